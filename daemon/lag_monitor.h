// How far a daemon's software runs behind the physics it emulates.
//
// The daemon runs the protocol stack on a scaled wall clock. Every event the
// physics schedules has a due time: a timer (a generation's heralding, a
// retransmission), a peer message (due at its send time plus the link's
// fibre delay), a state move the device asked for. When the loop handles it
// later than that, the software, not the modelled hardware, decided when it
// happened, and the rates the daemon reports are the runtime's.
//
// The monitor keeps, for this node:
//  * each event's lag (handled - due), as histograms per quarter second of
//    wall time, for p50/p99/max over the last minute (GetStatus);
//  * the time it was *behind*: the union of the intervals [due, handled] of
//    the events late by more than `bound` (a fraction of the node's shortest
//    classical delay: lag beyond it stretches the round trips the physics
//    counts), as a cumulative counter, so a request can ask what fraction of
//    its span the software was behind;
//  * the same counter and recent maximum as each neighbour reports of itself
//    in its peer frames (PeerLag), so that a report covers the neighbours.
// Nodes further away are not covered (their lag reaches a report only as
// far as it delays their neighbours' messages).
//
// Lags are reported in simulated time (wall time x time scale): that is the
// frame in which they change the physics. Loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/time.h"
#include "qnet/v1/node_service.pb.h"
#include "qnet/v1/peer_service.pb.h"

namespace qnet::daemon {

// A report says the software fell behind when it was behind for at least
// this fraction of the span: below it, rates are within about a percent of
// the physics.
inline constexpr double kBehindReportFraction = 0.01;

// "the software fell behind the physics by up to 2.1 ms (simulated) for 97%
// of this request (at alice, bob): rates are a lower bound", or "" when it
// kept up.
// "2.1 ms", "350 us", "1.2 s".
std::string FormatSeconds(double seconds);
std::string DescribeLag(const v1::SoftwareLag& lag);
// `status` with that sentence appended when the software fell behind: a
// failure (a timeout, say) may be the runtime's, not the network's.
absl::Status WithLagNote(absl::Status status, const v1::SoftwareLag& lag);

class LagMonitor {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LagMonitor(double time_scale);

  // This node's name (for reports) and the lag beyond which it counts as
  // behind (simulated; defaults to 1 us).
  void Configure(std::string self, Duration bound) {
    self_ = std::move(self);
    bound_sim_ = bound;
  }
  Duration bound() const { return bound_sim_; }

  // An event due at `due` was handled at `handled` (wall).
  void OnEvent(Clock::time_point due, Clock::time_point handled);
  // A neighbour's own account, from its latest peer frame.
  void OnNeighbourReport(const std::string& neighbour, const v1::PeerLag& lag, Clock::time_point now);
  // This node's own account, for its peer frames.
  v1::PeerLag OwnReport(Clock::time_point now) const;

  // A request's start, for Since.
  struct Mark {
    Clock::time_point at;
    int64_t own_behind_ns = 0;                    // simulated
    std::map<std::string, int64_t> neighbours;    // their behind_ns as last heard
  };
  Mark Begin(Clock::time_point now) const;
  // The account of the span from `mark` to `now`.
  v1::SoftwareLag Since(const Mark& mark, Clock::time_point now) const;
  // This node's account over the last minute.
  v1::LagStatus Recent(Clock::time_point now) const;

  // Cumulative simulated time this node was behind.
  int64_t own_behind_ns() const { return ToSimNs(behind_wall_ns_); }
  uint64_t events() const { return events_; }

 private:
  // Lag histogram bins: kBinsPerOctave per factor of two of nanoseconds.
  static constexpr int kBinsPerOctave = 4;
  static constexpr int kBins = kBinsPerOctave * 48;
  struct Bucket {
    Clock::time_point start;
    int64_t behind_wall_ns_at_start = 0;  // the cumulative counter when the bucket opened
    int64_t own_max_wall_ns = 0;
    int64_t neighbour_max_sim_ns = 0;
    uint64_t events = 0;
    std::array<uint32_t, kBins> histogram{};
  };
  struct Neighbour {
    int64_t behind_ns = 0;  // simulated, as the neighbour reports it
    int64_t recent_max_ns = 0;
  };

  Bucket& BucketAt(Clock::time_point now);
  int64_t ToSimNs(int64_t wall_ns) const;
  static int BinOf(int64_t wall_ns);
  static int64_t BinUpperNs(int bin);

  const double time_scale_;
  std::string self_;
  Duration bound_sim_ = std::chrono::microseconds(1);
  int64_t behind_wall_ns_ = 0;
  Clock::time_point behind_until_{};  // the end of the last interval counted
  uint64_t events_ = 0;
  std::deque<Bucket> buckets_;  // oldest first; only quarters that saw events
  std::map<std::string, Neighbour> neighbours_;
};

}  // namespace qnet::daemon
