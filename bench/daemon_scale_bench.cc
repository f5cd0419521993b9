// 64 real qnetd daemons on this machine (issue 13: "64 daemons of a grid or
// ring network come up, converge routes in < 5 s, and serve requests, idle
// CPU per daemon < 1% of a core"). One run per topology: an 8x8 grid or a
// ring of 64 ideal nodes on 1 km links, written to a temporary state
// directory and started through the launcher `qnetctl up` uses (LocalNetwork,
// RAII: the daemons are stopped at the end of the run, also on errors).
//
// Counters (times are wall seconds from the launch, i.e. from the call that
// starts the 64 processes):
//   ready_s              every daemon bound its port and reports SERVING
//                        (LocalNetwork::Start returned)
//   routes_s             every daemon's routing table (Node.GetRoutes) has a
//                        route to every other node: the target is < 5 s
//   routes_shortest_s    ... and every route is a shortest path (hops equal
//                        the graph distance): routing has converged
//   launch_cpu_{p50_ms,total_s}  CPU time the daemons used from their start
//                        until routes converged: median per daemon, and the
//                        sum over all of them (what the 2 cores had to give)
//   corner_*             end-to-end MEASURE requests between opposite
//                        corners (grid: g00-g77 and g07-g70, 14 hops; ring:
//                        r00-r32 and r16-r48, 32 hops): hops, wall time to the
//                        first pair (circuit setup across the path) and pairs
//                        per wall second over both requests
//   random_*             the same between random non-adjacent pairs (seeded)
//   pairs, requests_failed  pairs delivered over all requests; failed requests
//   idle_cpu_{p50,max,total}_pct  CPU time (user + system, all threads) each
//                        daemon used over 5 idle wall seconds after the
//                        requests, as % of one core: median and max over the
//                        daemons (target < 1), and the sum over all 64
//   threads_{p50,max}, fds_max, rss_{p50,max}_mib  per daemon, when idle
//   fd_limit             this process's RLIMIT_NOFILE (the daemons inherit it)
//   load_1m              the machine's 1-minute load average at the start
// The iteration time (manual time) is routes_s.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/process_stats.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "security/client_endpoints.h"

#ifndef QNETD_PATH
#define QNETD_PATH ""
#endif

namespace qnet::cli {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using bench::Percentile;

double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// A network's graph: node names and links (indices into `nodes`).
struct Topology {
  std::string name;
  std::vector<std::string> nodes;
  std::vector<std::pair<int, int>> links;
  std::vector<std::pair<int, int>> corners;  // the far-apart request pairs

  // Hop counts between all nodes (breadth-first search from each).
  std::vector<std::vector<int>> Distances() const {
    const int n = static_cast<int>(nodes.size());
    std::vector<std::vector<int>> adjacent(n);
    for (auto [a, b] : links) {
      adjacent[a].push_back(b);
      adjacent[b].push_back(a);
    }
    std::vector<std::vector<int>> dist(n, std::vector<int>(n, -1));
    for (int s = 0; s < n; ++s) {
      std::deque<int> queue = {s};
      dist[s][s] = 0;
      while (!queue.empty()) {
        const int u = queue.front();
        queue.pop_front();
        for (int v : adjacent[u]) {
          if (dist[s][v] < 0) {
            dist[s][v] = dist[s][u] + 1;
            queue.push_back(v);
          }
        }
      }
    }
    return dist;
  }

  std::string NetworkFile() const {
    std::string out = absl::StrCat("network: ", name, "\nseed: 13\nnodes:\n");
    for (const std::string& node : nodes) absl::StrAppend(&out, "  - {name: ", node, ", hardware: ideal}\n");
    absl::StrAppend(&out, "links:\n");
    for (auto [a, b] : links) {
      absl::StrAppend(&out, "  - {between: [", nodes[a], ", ", nodes[b], "], length_km: 1}\n");
    }
    return out;
  }
};

// side x side nodes g<row><column>, each linked to its right and lower neighbour.
Topology Grid(int side) {
  Topology t;
  t.name = absl::StrCat("grid", side, "x", side);
  auto index = [side](int r, int c) { return r * side + c; };
  for (int r = 0; r < side; ++r) {
    for (int c = 0; c < side; ++c) t.nodes.push_back(absl::StrCat("g", r, c));
  }
  for (int r = 0; r < side; ++r) {
    for (int c = 0; c < side; ++c) {
      if (c + 1 < side) t.links.emplace_back(index(r, c), index(r, c + 1));
      if (r + 1 < side) t.links.emplace_back(index(r, c), index(r + 1, c));
    }
  }
  t.corners = {{index(0, 0), index(side - 1, side - 1)}, {index(0, side - 1), index(side - 1, 0)}};
  return t;
}

// n nodes r00 .. r<n-1> in a ring.
Topology Ring(int n) {
  Topology t;
  t.name = absl::StrCat("ring", n);
  for (int i = 0; i < n; ++i) t.nodes.push_back(absl::StrFormat("r%02d", i));
  for (int i = 0; i < n; ++i) t.links.emplace_back(i, (i + 1) % n);
  t.corners = {{0, n / 2}, {n / 4, n / 4 + n / 2}};
  return t;
}

// The running network: its daemons, their pids and a channel to each.
// Destroying it stops every daemon (LocalNetwork is RAII) and removes the
// state directory, unless KeepStateDir() was called (after a failure, for
// the logs).
class ScaleNetwork {
 public:
  static absl::StatusOr<std::unique_ptr<ScaleNetwork>> Start(const Topology& topology, double time_scale) {
    if (!fs::exists(QNETD_PATH)) {
      return absl::NotFoundError(absl::StrCat("qnetd not found at '", QNETD_PATH,
                                              "': build it first (ninja -C BUILD_DIR qnetd)"));
    }
    auto net = std::unique_ptr<ScaleNetwork>(new ScaleNetwork());
    net->dir_ = fs::temp_directory_path() / absl::StrCat("qnet-bench-scale-", getpid(), "-", topology.name);
    std::error_code ec;
    fs::remove_all(net->dir_, ec);
    fs::create_directories(net->dir_, ec);
    const fs::path file = net->dir_ / "network.yaml";
    {
      std::ofstream out(file);
      out << topology.NetworkFile();
      if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", file.string()));
    }
    LaunchOptions options;
    options.qnetd_path = QNETD_PATH;
    options.network_file = file.string();
    options.state_dir = (net->dir_ / "state").string();
    options.time_scale = time_scale;
    options.log_level = "warn";  // info logs every link and request: keep 64 daemons' logging out of the figures
    // For chasing a failed request: its daemons' debug logs (the figures then include the logging).
    if (const char* level = std::getenv("QNET_BENCH_DAEMON_LOG_LEVEL"); level != nullptr) options.log_level = level;
    options.ready_timeout = absl::Seconds(60);
    options.stop_grace = absl::Seconds(10);
    net->launched_ = SteadyClock::now();
    absl::StatusOr<std::unique_ptr<LocalNetwork>> network = LocalNetwork::Start(options);
    if (!network.ok()) {
      net->keep_ = true;
      return absl::Status(network.status().code(),
                          absl::StrCat(network.status().message(), "\n(logs in ", options.state_dir, ")"));
    }
    net->ready_s_ = SecondsSince(net->launched_);
    net->network_ = *std::move(network);
    for (const std::string& node : topology.nodes) {
      absl::StatusOr<std::string> address = net->network_->Address(node);
      absl::StatusOr<pid_t> pid = net->network_->Pid(node);
      if (!address.ok()) return address.status();
      if (!pid.ok()) return pid.status();
      net->addresses_.push_back(*address);
      net->pids_.push_back(*pid);
      net->stubs_.push_back(v1::Node::NewStub(security::ClientChannel(*address)));
    }
    return net;
  }

  ~ScaleNetwork() {
    stubs_.clear();
    if (network_ != nullptr) {
      (void)network_->StopAll();
      network_.reset();
    }
    std::error_code ec;
    if (!keep_) fs::remove_all(dir_, ec);
  }

  // Keeps the state directory (network file, logs); returns where it is.
  std::string KeepStateDir() {
    keep_ = true;
    return dir_.string();
  }
  std::string LogTail(int node, int lines = 10) const {
    return network_->LogTail(network_->nodes()[static_cast<size_t>(node)], lines);
  }

  SteadyClock::time_point launched() const { return launched_; }
  double ready_s() const { return ready_s_; }
  const std::string& address(int node) const { return addresses_[static_cast<size_t>(node)]; }
  const std::vector<pid_t>& pids() const { return pids_; }

  absl::StatusOr<v1::GetRoutesResponse> Routes(int node) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetRoutesResponse routes;
    grpc::Status s = stubs_[static_cast<size_t>(node)]->GetRoutes(&context, v1::GetRoutesRequest(), &routes);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    return routes;
  }

 private:
  ScaleNetwork() = default;

  fs::path dir_;
  bool keep_ = false;
  SteadyClock::time_point launched_;
  double ready_s_ = 0;
  std::unique_ptr<LocalNetwork> network_;
  std::vector<std::string> addresses_;
  std::vector<pid_t> pids_;
  std::vector<std::unique_ptr<v1::Node::Stub>> stubs_;
};

struct Convergence {
  double routes_s = 0;    // every daemon has a route to every other node
  double shortest_s = 0;  // ... and all of them are shortest paths
};

// Polls every daemon's routing table until each has a route of the graph
// distance to every other node; times are seconds since the launch. Each
// round asks only the daemons not yet converged, so the polling itself
// loads the network less and less.
absl::StatusOr<Convergence> WaitForRoutes(ScaleNetwork& net, const Topology& topology, absl::Duration timeout) {
  const std::vector<std::vector<int>> dist = topology.Distances();
  std::map<std::string, int> index;
  for (size_t i = 0; i < topology.nodes.size(); ++i) index[topology.nodes[i]] = static_cast<int>(i);
  const int n = static_cast<int>(topology.nodes.size());
  std::vector<std::optional<double>> all_routes(n), shortest(n);
  const absl::Time give_up = absl::Now() + timeout;
  std::string last_problem;
  while (true) {
    int pending = 0;
    for (int i = 0; i < n; ++i) {
      if (shortest[i].has_value()) continue;
      absl::StatusOr<v1::GetRoutesResponse> routes = net.Routes(i);
      const double now = SecondsSince(net.launched());
      if (!routes.ok()) {
        last_problem = absl::StrCat(topology.nodes[i], ": GetRoutes: ", routes.status().message());
        ++pending;
        continue;
      }
      std::vector<bool> reached(n, false), best(n, false);
      for (const v1::RouteEntry& r : routes->routes()) {
        auto it = index.find(r.destination());
        if (it == index.end()) continue;
        reached[it->second] = true;
        best[it->second] = r.path_size() - 1 == dist[i][it->second];
      }
      int missing = 0, longer = 0;
      for (int j = 0; j < n; ++j) {
        if (j == i) continue;
        missing += reached[j] ? 0 : 1;
        longer += reached[j] && !best[j] ? 1 : 0;
      }
      if (missing == 0 && !all_routes[i].has_value()) all_routes[i] = now;
      if (missing == 0 && longer == 0) {
        shortest[i] = now;
      } else {
        ++pending;
        last_problem = absl::StrCat(topology.nodes[i], " lacks ", missing, " routes, ", longer, " are not shortest");
      }
    }
    if (pending == 0) break;
    if (absl::Now() > give_up) {
      return absl::DeadlineExceededError(absl::StrCat(pending, " daemons have not converged after ",
                                                      absl::FormatDuration(timeout), "; e.g. ", last_problem));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Convergence c;
  for (int i = 0; i < n; ++i) {
    c.routes_s = std::max(c.routes_s, *all_routes[i]);
    c.shortest_s = std::max(c.shortest_s, *shortest[i]);
  }
  return c;
}

struct RequestFigures {
  int requests = 0;
  int failed = 0;
  uint64_t pairs = 0;
  double wall_s = 0;  // summed over the requests
  int max_hops = 0;
  std::vector<double> first_pair_ms;
  std::string first_error;
};

// One end-to-end MEASURE request of `pairs` pairs from `from` to `to`.
void Request(ScaleNetwork& net, const Topology& topology, int from, int to, uint32_t pairs, double time_scale,
             RequestFigures& out) {
  v1::EntangleRequest request;
  request.set_remote_node(topology.nodes[static_cast<size_t>(to)]);
  request.set_pairs(pairs);
  request.set_type(v1::EntangleRequest::MEASURE);
  request.set_basis(v1::EntangleRequest::BB84);
  // With a time limit a request waits for memory still reserved by the
  // previous request's circuit (its teardown travels the path after the
  // client has its last pair) instead of failing with NO_RESOURCES.
  request.set_timeout_s(60 * time_scale);  // a wall minute
  const SteadyClock::time_point start = SteadyClock::now();
  std::optional<double> first_ms;
  EntangleResult partial;
  absl::StatusOr<EntangleResult> result =
      RunEntangle(net.address(from), request, absl::Seconds(60), [&](const v1::PairEvent&) {
        if (!first_ms) first_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
      }, &partial);
  out.wall_s += SecondsSince(start);
  ++out.requests;
  if (first_ms) out.first_pair_ms.push_back(*first_ms);
  if (!result.ok()) {
    ++out.failed;
    out.pairs += partial.pairs.size();
    if (out.first_error.empty()) {
      out.first_error = absl::StrCat(topology.nodes[static_cast<size_t>(from)], " -> ",
                                     topology.nodes[static_cast<size_t>(to)], ": ", result.status().ToString(),
                                     "; the end of its log:\n", net.LogTail(from));
    }
    return;
  }
  out.pairs += result->pairs.size();
  out.max_hops = std::max(out.max_hops, result->summary.path_size() - 1);
}

// Args: topology (0: 8x8 grid, 1: ring of 64), time scale.
void BM_DaemonScale(benchmark::State& state) {
  const Topology topology = state.range(0) == 0 ? Grid(8) : Ring(64);
  const auto time_scale = static_cast<double>(state.range(1));
  constexpr uint32_t kCornerPairs = 20;
  constexpr uint32_t kRandomPairs = 10;
  constexpr int kRandomRequests = 6;
  constexpr auto kIdleWindow = std::chrono::seconds(5);

  double load_1m = 0;
  std::ifstream("/proc/loadavg") >> load_1m;
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);

  for (auto _ : state) {
    absl::StatusOr<std::unique_ptr<ScaleNetwork>> started = ScaleNetwork::Start(topology, time_scale);
    if (!started.ok()) return state.SkipWithError(started.status().ToString().c_str());
    ScaleNetwork& net = **started;
    auto fail = [&](const std::string& what) {
      state.SkipWithError(absl::StrCat(what, "\n(state directory kept: ", net.KeepStateDir(), ")").c_str());
    };

    absl::StatusOr<Convergence> converged = WaitForRoutes(net, topology, absl::Seconds(60));
    if (!converged.ok()) return fail(converged.status().ToString());
    state.SetIterationTime(converged->routes_s);
    std::vector<double> launch_cpu_ms;
    for (pid_t pid : net.pids()) launch_cpu_ms.push_back(bench::ProcessCpuSeconds(pid).value_or(0) * 1e3);

    RequestFigures corners, random;
    for (auto [a, b] : topology.corners) Request(net, topology, a, b, kCornerPairs, time_scale, corners);
    const std::vector<std::vector<int>> dist = topology.Distances();
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> pick(0, static_cast<int>(topology.nodes.size()) - 1);
    while (random.requests < kRandomRequests) {
      const int a = pick(rng), b = pick(rng);
      if (dist[a][b] < 2) continue;  // neighbours are the link layer's, not routed
      Request(net, topology, a, b, kRandomPairs, time_scale, random);
    }
    if (corners.failed + random.failed > 0) {
      // Counted (requests_failed), not fatal: the launch, routing and idle
      // figures still hold. The logs stay for the cause.
      std::fprintf(stderr, "%s: %d requests failed; the first: %s\n(state directory kept: %s)\n",
                   topology.name.c_str(), corners.failed + random.failed,
                   (corners.first_error.empty() ? random.first_error : corners.first_error).c_str(),
                   net.KeepStateDir().c_str());
    }

    // Idle: nothing asked of the daemons; let the last requests' teardown settle first.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const std::vector<pid_t>& pids = net.pids();
    std::vector<double> cpu_before;
    for (pid_t pid : pids) cpu_before.push_back(bench::ProcessCpuSeconds(pid).value_or(0));
    const SteadyClock::time_point idle_start = SteadyClock::now();
    std::this_thread::sleep_for(kIdleWindow);
    const double idle_s = SecondsSince(idle_start);
    std::vector<double> idle_pct, threads, rss;
    double fds_max = 0;
    for (size_t i = 0; i < pids.size(); ++i) {
      std::optional<double> cpu = bench::ProcessCpuSeconds(pids[i]);
      if (!cpu) return fail(absl::StrCat("cannot read the CPU time of pid ", pids[i], ": did the daemon die?"));
      idle_pct.push_back((*cpu - cpu_before[i]) / idle_s * 100.0);
      threads.push_back(bench::ProcessThreads(pids[i]).value_or(0));
      rss.push_back(bench::ProcessRssMiB(pids[i]).value_or(0));
      fds_max = std::max<double>(fds_max, bench::ProcessOpenFiles(pids[i]).value_or(0));
    }
    double idle_total = 0;
    for (double p : idle_pct) idle_total += p;
    double launch_cpu_total_ms = 0;
    for (double ms : launch_cpu_ms) launch_cpu_total_ms += ms;
    for (auto* v : {&launch_cpu_ms, &idle_pct, &threads, &rss}) std::sort(v->begin(), v->end());
    std::sort(corners.first_pair_ms.begin(), corners.first_pair_ms.end());
    std::sort(random.first_pair_ms.begin(), random.first_pair_ms.end());

    state.counters["daemons"] = static_cast<double>(pids.size());
    state.counters["ready_s"] = net.ready_s();
    state.counters["routes_s"] = converged->routes_s;
    state.counters["routes_shortest_s"] = converged->shortest_s;
    state.counters["launch_cpu_p50_ms"] = Percentile(launch_cpu_ms, 0.5);
    state.counters["launch_cpu_total_s"] = launch_cpu_total_ms / 1e3;
    state.counters["corner_hops"] = corners.max_hops;
    state.counters["corner_first_pair_ms"] = Percentile(corners.first_pair_ms, 1.0);
    state.counters["corner_pairs_per_s"] = static_cast<double>(corners.pairs) / corners.wall_s;
    state.counters["random_first_pair_p50_ms"] = Percentile(random.first_pair_ms, 0.5);
    state.counters["random_first_pair_max_ms"] = Percentile(random.first_pair_ms, 1.0);
    state.counters["random_pairs_per_s"] = static_cast<double>(random.pairs) / random.wall_s;
    state.counters["pairs"] = static_cast<double>(corners.pairs + random.pairs);
    state.counters["requests_failed"] = corners.failed + random.failed;
    state.counters["idle_cpu_p50_pct"] = Percentile(idle_pct, 0.5);
    state.counters["idle_cpu_max_pct"] = Percentile(idle_pct, 1.0);
    state.counters["idle_cpu_total_pct"] = idle_total;
    state.counters["threads_p50"] = Percentile(threads, 0.5);
    state.counters["threads_max"] = Percentile(threads, 1.0);
    state.counters["fds_max"] = fds_max;
    state.counters["rss_p50_mib"] = Percentile(rss, 0.5);
    state.counters["rss_max_mib"] = Percentile(rss, 1.0);
    state.counters["fd_limit"] = static_cast<double>(files.rlim_cur);
    state.counters["load_1m"] = load_1m;
  }
}
// One launch of 64 daemons per run (about half a minute each); repetitions
// are fixed at one whatever --benchmark_repetitions says, to keep `./qnet
// bench` bounded.
BENCHMARK(BM_DaemonScale)
    ->ArgNames({"topology", "scale"})
    ->Args({0, 1})  // 8x8 grid, real time
    ->Args({1, 1})  // ring of 64, real time
    ->Args({0, 100})  // 8x8 grid, 100 simulated seconds per wall second
    ->Iterations(1)
    ->Repetitions(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace qnet::cli
