#include "daemon/lag_monitor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace qnet::daemon {

namespace {
// Quarter seconds of wall time per bucket; buckets older than the retention
// are dropped (a request longer than that gets its maximum lag over the
// retained part; its behind fraction comes from exact counters).
constexpr auto kBucket = std::chrono::milliseconds(250);
constexpr auto kRetention = std::chrono::minutes(10);
constexpr auto kRecentWindow = std::chrono::minutes(1);

int64_t WallNs(LagMonitor::Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}
double SimSeconds(int64_t sim_ns) { return static_cast<double>(sim_ns) * 1e-9; }
}  // namespace

std::string FormatSeconds(double s) {
  if (s >= 1.0) return absl::StrFormat("%.3g s", s);
  if (s >= 1e-3) return absl::StrFormat("%.3g ms", s * 1e3);
  if (s >= 1e-6) return absl::StrFormat("%.3g us", s * 1e6);
  return absl::StrFormat("%.3g ns", s * 1e9);
}

std::string DescribeLag(const v1::SoftwareLag& lag) {
  if (!lag.behind()) return "";
  return absl::StrFormat(
      "the software fell behind the physics by up to %s (simulated) for %.0f%% of this request (at %s): rates are "
      "a lower bound; a smaller --time-scale or qnetsim gives the network's own figures",
      FormatSeconds(lag.max_lag_s()), 100.0 * lag.behind_fraction(), absl::StrJoin(lag.nodes_behind(), ", "));
}

absl::Status WithLagNote(absl::Status status, const v1::SoftwareLag& lag) {
  if (status.ok() || !lag.behind()) return status;
  return absl::Status(status.code(), absl::StrCat(status.message(), "; meanwhile ", DescribeLag(lag)));
}

LagMonitor::LagMonitor(double time_scale) : time_scale_(time_scale) {}

int64_t LagMonitor::ToSimNs(int64_t wall_ns) const {
  return static_cast<int64_t>(std::llround(static_cast<double>(wall_ns) * time_scale_));
}

int LagMonitor::BinOf(int64_t wall_ns) {
  if (wall_ns <= 0) return 0;
  const int bin = static_cast<int>(std::floor(kBinsPerOctave * std::log2(static_cast<double>(wall_ns) + 1.0)));
  return std::clamp(bin, 0, kBins - 1);
}

int64_t LagMonitor::BinUpperNs(int bin) {
  return static_cast<int64_t>(std::exp2(static_cast<double>(bin + 1) / kBinsPerOctave) - 1.0);
}

LagMonitor::Bucket& LagMonitor::BucketAt(Clock::time_point now) {
  if (buckets_.empty() || now >= buckets_.back().start + kBucket) {
    Bucket& b = buckets_.emplace_back();
    b.start = now;
    b.behind_wall_ns_at_start = behind_wall_ns_;
    while (buckets_.front().start + kRetention < now) buckets_.pop_front();
  }
  return buckets_.back();
}

void LagMonitor::OnEvent(Clock::time_point due, Clock::time_point handled) {
  const int64_t lag_wall = std::max<int64_t>(0, WallNs(handled - due));
  Bucket& b = BucketAt(handled);
  ++events_;
  ++b.events;
  ++b.histogram[BinOf(lag_wall)];
  b.own_max_wall_ns = std::max(b.own_max_wall_ns, lag_wall);
  if (Duration(ToSimNs(lag_wall)) <= bound_sim_) return;
  // Behind from `due` to `handled`; overlapping intervals count once.
  const Clock::time_point from = std::max(due, behind_until_);
  if (handled > from) behind_wall_ns_ += WallNs(handled - from);
  behind_until_ = std::max(behind_until_, handled);
}

void LagMonitor::OnNeighbourReport(const std::string& neighbour, const v1::PeerLag& lag, Clock::time_point now) {
  Neighbour& n = neighbours_[neighbour];
  n.behind_ns = lag.behind_ns();
  n.recent_max_ns = lag.recent_max_lag_ns();
  if (lag.recent_max_lag_ns() > 0) {
    Bucket& b = BucketAt(now);
    b.neighbour_max_sim_ns = std::max(b.neighbour_max_sim_ns, lag.recent_max_lag_ns());
  }
}

v1::PeerLag LagMonitor::OwnReport(Clock::time_point now) const {
  v1::PeerLag out;
  out.set_behind_ns(ToSimNs(behind_wall_ns_));
  int64_t recent = 0;
  for (auto it = buckets_.rbegin(); it != buckets_.rend() && it->start + 2 * kBucket > now; ++it) {
    recent = std::max(recent, it->own_max_wall_ns);
  }
  out.set_recent_max_lag_ns(ToSimNs(recent));
  return out;
}

LagMonitor::Mark LagMonitor::Begin(Clock::time_point now) const {
  Mark mark;
  mark.at = now;
  mark.own_behind_ns = ToSimNs(behind_wall_ns_);
  for (const auto& [name, n] : neighbours_) mark.neighbours[name] = n.behind_ns;
  return mark;
}

v1::SoftwareLag LagMonitor::Since(const Mark& mark, Clock::time_point now) const {
  v1::SoftwareLag out;
  out.set_bound_s(ToSeconds(bound_sim_));
  const double span_ns = static_cast<double>(ToSimNs(WallNs(now - mark.at)));
  auto fraction = [span_ns](int64_t behind_ns) {
    if (!(span_ns > 0)) return 0.0;
    return std::clamp(static_cast<double>(behind_ns) / span_ns, 0.0, 1.0);
  };
  struct Source {
    std::string name;
    double fraction;
  };
  std::vector<Source> sources;
  sources.push_back({self_, fraction(ToSimNs(behind_wall_ns_) - mark.own_behind_ns)});
  for (const auto& [name, n] : neighbours_) {
    auto at_mark = mark.neighbours.find(name);
    // A neighbour first heard from after the mark has no baseline; a
    // restarted one counts from zero again.
    if (at_mark == mark.neighbours.end()) continue;
    sources.push_back({name, fraction(std::max<int64_t>(0, n.behind_ns - at_mark->second))});
  }
  double worst = 0.0;
  for (const Source& s : sources) {
    worst = std::max(worst, s.fraction);
    if (s.fraction >= kBehindReportFraction) out.add_nodes_behind(s.name);
  }
  out.set_behind_fraction(worst);
  out.set_behind(worst >= kBehindReportFraction);
  int64_t max_sim_ns = 0;
  for (auto it = buckets_.rbegin(); it != buckets_.rend() && it->start + kBucket > mark.at; ++it) {
    max_sim_ns = std::max({max_sim_ns, ToSimNs(it->own_max_wall_ns), it->neighbour_max_sim_ns});
  }
  out.set_max_lag_s(SimSeconds(max_sim_ns));
  return out;
}

v1::LagStatus LagMonitor::Recent(Clock::time_point now) const {
  v1::LagStatus out;
  out.set_bound_s(ToSeconds(bound_sim_));
  std::array<uint64_t, kBins> histogram{};
  const Bucket* first = nullptr;
  int64_t max_wall = 0;
  uint64_t events = 0;
  for (const Bucket& b : buckets_) {
    if (b.start + kRecentWindow < now) continue;
    if (first == nullptr) first = &b;
    for (int i = 0; i < kBins; ++i) histogram[i] += b.histogram[i];
    max_wall = std::max(max_wall, b.own_max_wall_ns);
    events += b.events;
  }
  out.set_events(events);
  if (first == nullptr || events == 0) return out;
  const int64_t window_wall = std::max<int64_t>(1, WallNs(now - first->start));
  out.set_window_s(static_cast<double>(window_wall) * 1e-9);
  auto percentile = [&](double q) {
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(events))));
    uint64_t seen = 0;
    for (int i = 0; i < kBins; ++i) {
      seen += histogram[i];
      if (seen >= rank) return std::min(BinUpperNs(i), max_wall);
    }
    return max_wall;
  };
  out.set_p50_s(SimSeconds(ToSimNs(percentile(0.50))));
  out.set_p99_s(SimSeconds(ToSimNs(percentile(0.99))));
  out.set_max_s(SimSeconds(ToSimNs(max_wall)));
  const double fraction = std::clamp(
      static_cast<double>(behind_wall_ns_ - first->behind_wall_ns_at_start) / static_cast<double>(window_wall), 0.0,
      1.0);
  out.set_behind_fraction(fraction);
  out.set_behind(fraction >= kBehindReportFraction);
  return out;
}

}  // namespace qnet::daemon
