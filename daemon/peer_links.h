// The daemon's links to its neighbours: one Peer.Exchange stream per
// neighbour (the node whose name sorts lower dials, with backoff while the
// neighbour is unreachable), the Hello handshake, batching of outbound
// protocol messages, heartbeats that notice a silent neighbour (3 s by
// default, qnetd --peer-timeout), and emulation of each link's classical delay on the receiving
// side. It tells the protocol stack OnNeighbourUp/Down and delivers messages
// to it. All methods except the gRPC service run on the event loop.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/node_context.h"
#include "daemon/access_policy.h"
#include "daemon/event_loop.h"
#include "daemon/log.h"
#include "daemon/peer_directory.h"
#include "daemon/peer_stream.h"
#include "daemon/topology.h"
#include "qnet/v1/peer_service.grpc.pb.h"

namespace qnet::daemon {

// 2: open link-layer requests (extend, totals), and the Hello names the
// sender's simulated time line.
inline constexpr uint32_t kPeerProtocolVersion = 2;

inline constexpr double kDefaultMaxPeerFramesPerSecond = 20000;

struct PeerLinkTiming {
  // Sent on a stream with nothing else to send. Each costs either end a few
  // tenths of a millisecond of CPU (gRPC's threads and the loop): at 200 ms,
  // 64 idle daemons of a grid used ~0.8% of a core each. The daemon keeps at
  // least five per silence_limit (Daemon::Start clamps).
  WallClock::duration heartbeat_interval = std::chrono::milliseconds(600);
  // A neighbour not heard from for this long is down. Generous because a
  // loaded host (CI, sanitizers) can starve a healthy peer for a second; a
  // crashed peer is noticed at once anyway (its stream closes).
  WallClock::duration silence_limit = std::chrono::milliseconds(3000);
  WallClock::duration handshake_timeout = std::chrono::milliseconds(2000);
  WallClock::duration min_redial = std::chrono::milliseconds(50);
  WallClock::duration max_redial = std::chrono::milliseconds(500);
  // Frames a neighbour may send per wall second, a second's worth at once
  // (a token bucket); beyond it its stream is closed with
  // RESOURCE_EXHAUSTED (it may reconnect). Bounds the loop work one
  // neighbour can cause; far above what the protocols send (BENCHMARKS.md).
  // 0: no limit.
  double max_frames_per_second = kDefaultMaxPeerFramesPerSecond;
};

struct NeighbourState {
  std::string name;
  std::string link;
  bool connected = false;
  bool we_dial = false;
  Duration classical_delay{0};
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t messages_dropped = 0;  // sent while the neighbour was down
  uint64_t frames_received = 0;
  uint64_t frame_limit_closes = 0;  // streams closed for exceeding max_frames_per_second
  uint64_t batches_received = 0;  // frames carrying messages
  uint64_t bytes_sent = 0;        // serialized frames, heartbeats too (not the Hello)
  uint64_t bytes_received = 0;    // serialized frames of every kind
  uint64_t times_connected = 0;
};

class PeerLinks {
 public:
  PeerLinks(EventLoop& loop, PeerDirectory& directory, const Logger& log, const DaemonTopology& topology,
            std::shared_ptr<CallCounter> calls, PeerLinkTiming timing = {});
  ~PeerLinks();
  PeerLinks(const PeerLinks&) = delete;
  PeerLinks& operator=(const PeerLinks&) = delete;

  // The Peer gRPC service to register with the daemon's server.
  grpc::Service* service();

  // Loop thread only from here on.
  void SetSink(PeerMessageSink* sink) { sink_ = sink; }
  // Checks every accepted stream's certificate (before Start; may be null).
  void SetAccessPolicy(const AccessPolicy* policy) { policy_ = policy; }
  // Starts dialing the neighbours this node dials.
  void Start();
  // Queues `message` for the neighbour; sent in one batch with the others
  // queued in this loop turn. Dropped (and counted) if the link is down.
  void Send(const std::string& neighbour, v1::PeerMessage message);
  // Says Goodbye on every stream, closes them and stops redialing.
  void CloseAll(const std::string& reason);
  // Aborts streams still open (after CloseAll had its chance).
  void AbortAll();

  // In the network file's link order.
  std::vector<NeighbourState> Neighbours() const;
  bool IsConnected(const std::string& neighbour) const;

 private:
  struct Held {
    WallClock::time_point deliver_at;
    WallClock::time_point due;  // send time + the link's delay: later than this is lag
    v1::PeerMessage message;
  };
  struct Neighbour {
    NeighbourState state;
    WallClock::duration hold{0};        // classical delay in wall time
    PeerStreamPtr stream;               // established (handshake done)
    PeerStreamPtr dialing;              // our dial in progress
    std::vector<v1::PeerEnvelope> outbound;
    bool flush_posted = false;
    std::deque<Held> inbound;
    TimerId inbound_timer = kNoTimer;
    TimerId keepalive_timer = kNoTimer;
    TimerId redial_timer = kNoTimer;
    TimerId handshake_timer = kNoTimer;
    WallClock::duration backoff{0};
    WallClock::time_point last_heard;
    WallClock::time_point last_sent;
    WallClock::time_point last_keepalive;  // when Keepalive last ran
    std::string last_dial_error;
    // Why we last refused its Hello: a neighbour refused for its
    // configuration redials every few seconds, and one warning per reason
    // says it (later ones are debug lines).
    std::string last_refusal;
    // Token bucket of max_frames_per_second, refilled from the wall clock.
    double frame_tokens = 0;
    WallClock::time_point tokens_at;
  };
  class Service;

  Neighbour* Find(const std::string& name);
  Neighbour* FindByStream(const PeerStreamPtr& stream);
  PeerStreamEvents Events();
  v1::PeerFrame MakeHello() const;
  absl::Status CheckHello(const v1::Hello& hello, bool from_dialer) const;
  absl::Status CheckTimeLine(const v1::Hello& hello) const;
  // False (and the stream closed) if `n` sent frames faster than allowed.
  // Charged at the frame's arrival, so a backlog the loop drains late (a
  // stalled loop) is not taken for a burst from the neighbour.
  bool AdmitFrame(Neighbour& n, const PeerStreamPtr& stream, WallClock::time_point arrived);

  void Dial(Neighbour& n);
  void ScheduleRedial(Neighbour& n);
  // `certified_node`: the node the caller's certificate names ("" without TLS).
  void OnAccepted(PeerStreamPtr stream, std::string certified_node);
  void OnFrame(PeerStreamPtr stream, v1::PeerFrame frame, WallClock::time_point arrived);
  void OnClosed(PeerStreamPtr stream, grpc::Status status);
  void Establish(Neighbour& n, PeerStreamPtr stream);
  void MarkDown(Neighbour& n, const std::string& why);
  void Flush(Neighbour& n);
  void Keepalive(Neighbour& n);
  void Receive(Neighbour& n, v1::PeerBatch& batch);
  void DeliverDue(Neighbour& n);

  EventLoop& loop_;
  PeerDirectory& directory_;
  const Logger& log_;
  const DaemonTopology& topology_;
  std::shared_ptr<CallCounter> calls_;
  const PeerLinkTiming timing_;
  std::unique_ptr<Service> service_;
  PeerMessageSink* sink_ = nullptr;
  std::map<std::string, Neighbour> neighbours_;
  struct PendingStream {
    TimerId handshake_timer = kNoTimer;
    std::string certified_node;  // its Hello must name this node (with TLS)
  };
  std::map<PeerStreamPtr, PendingStream> pending_;  // accepted, no Hello yet
  const AccessPolicy* policy_ = nullptr;
  bool closed_ = false;
};

}  // namespace qnet::daemon
