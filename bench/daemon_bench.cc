// Real qnetd daemons on localhost: MEASURE pairs per wall-clock second
// between two daemons, and how much wall time the daemons, gRPC and the
// client add to each pair beyond the latency the daemon itself reports.
//
// Two qnetd processes run examples/ideal-pair.yaml (noise-free hardware,
// 1 km, double-click, 2 memory qubits per node), started once per benchmark
// run through the launcher `qnetctl up` uses and stopped at its end (also on
// errors). The time scale S (simulated seconds per wall second) is 100: a
// pair's modelled physics, ~15 us of simulated time on this link (in-process
// simulator), then costs ~0.15 us of wall time, so what is measured is the
// software. S stays at or below 500 on purpose: above it the link layer's
// retransmission timeout floor (20 ms wall x S, daemon/stack_factory.cc)
// exceeds the reliable channel's 10 s simulated ceiling and stops holding.
// Each iteration is one Node.Entangle request from alice's client, streamed
// on one long-lived channel; its wall time from the call to the end of the
// stream is the iteration time (manual time).
//
// Counters (per pair, over all iterations of a run):
//   pairs_per_s          pairs delivered / wall seconds
//   wall_p50_ms, _p99    wall time from the request to the pair's arrival at the client
//   daemon_p50_ms, _p99  the pair's latency as the daemon reports it
//                        (PairEvent.latency_s: simulated, from the request to
//                        the origin's measurement of the pair) divided by S,
//                        i.e. the same span on the daemon's clock in wall ms
//   overhead_p50_ms, _p99  wall minus daemon latency: the request's way in,
//                        the far end's confirmation of the pair, and the
//                        pair's way out to the client
//   alice_cpu_us, bob_cpu_us  each daemon's CPU time (user + system) per pair
//   ctx_switches         context switches per pair, both daemons, all threads
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/process_stats.h"
#include "cli/entangle_client.h"
#include "cli/launcher.h"
#include "qnet/v1/node_service.grpc.pb.h"
#include "security/client_endpoints.h"

#ifndef QNETD_PATH
#define QNETD_PATH ""
#endif
#ifndef QNET_SOURCE_DIR
#define QNET_SOURCE_DIR "."
#endif

namespace qnet::cli {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;
using bench::Percentile;
using bench::ProcessCpuSeconds;

// Context switches (voluntary + involuntary) over all threads of process
// `pid` so far (/proc/PID/task/*/status; threads that already exited are
// not counted), or 0 if they cannot be read.
double ProcessContextSwitches(pid_t pid) {
  double total = 0;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      for (const char* key : {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"}) {
        if (line.rfind(key, 0) == 0) total += std::stod(line.substr(std::string(key).size()));
      }
    }
  }
  return total;
}


// Two running daemons (alice, bob) of examples/ideal-pair.yaml and a client
// channel to alice. Destroying it stops both daemons (LocalNetwork is RAII).
class DaemonPair {
 public:
  // `qubits` > 0: the same network with that many memory qubits per node
  // (more generations in flight at once) instead of the example's 2.
  // `insecure`: plaintext daemons (--insecure-local-only) instead of mutual TLS.
  static absl::StatusOr<std::unique_ptr<DaemonPair>> Start(double time_scale, int qubits, const std::string& tag,
                                                           bool insecure = false) {
    if (!fs::exists(QNETD_PATH)) {
      return absl::NotFoundError(absl::StrCat("qnetd not found at '", QNETD_PATH,
                                              "': build it first (ninja -C BUILD_DIR qnetd)"));
    }
    auto pair = std::unique_ptr<DaemonPair>(new DaemonPair());
    pair->state_dir_ = fs::temp_directory_path() / absl::StrCat("qnet-bench-", getpid(), "-", tag);
    LaunchOptions options;
    options.qnetd_path = QNETD_PATH;
    options.network_file = absl::StrCat(QNET_SOURCE_DIR, "/examples/ideal-pair.yaml");
    if (qubits > 0) {
      std::error_code ec;
      fs::create_directories(pair->state_dir_, ec);
      options.network_file = (pair->state_dir_ / "ideal-pair-memory.yaml").string();
      std::ofstream out(options.network_file);
      out << "network: ideal-pair\nseed: 7\nnodes:\n";
      for (const char* node : {"alice", "bob"}) {
        out << "  - name: " << node << "\n    hardware: ideal\n    qubits: " << qubits << "\n";
      }
      out << "links:\n  - between: [alice, bob]\n    length_km: 1\n";
      if (!out.flush()) return absl::InternalError(absl::StrCat("cannot write ", options.network_file));
    }
    options.state_dir = pair->state_dir_.string();
    options.insecure = insecure;
    options.time_scale = time_scale;
    options.log_level = "warn";  // the daemons log per request at info; keep that out of the timing
    // Extra qnetd flags for before/after comparisons of one binary, e.g.
    // QNET_BENCH_QNETD_ARGS="--metrics-listen off" (space-separated).
    if (const char* extra = std::getenv("QNET_BENCH_QNETD_ARGS"); extra != nullptr) {
      for (absl::string_view arg : absl::StrSplit(extra, ' ', absl::SkipEmpty())) {
        options.extra_args.emplace_back(arg);
      }
    }
    options.ready_timeout = absl::Seconds(20);
    options.stop_grace = absl::Seconds(5);
    absl::StatusOr<std::unique_ptr<LocalNetwork>> network = LocalNetwork::Start(options);
    if (!network.ok()) return network.status();
    pair->network_ = *std::move(network);
    for (const char* node : {"alice", "bob"}) {
      absl::StatusOr<std::string> address = pair->network_->Address(node);
      absl::StatusOr<pid_t> pid = pair->network_->Pid(node);
      if (!address.ok()) return address.status();
      if (!pid.ok()) return pid.status();
      pair->addresses_.push_back(*address);
      pair->pids_.push_back(*pid);
    }
    pair->stub_ =
        v1::Node::NewStub(security::ClientChannel(pair->addresses_[0]));
    if (absl::Status s = pair->WaitConnected(absl::Seconds(10)); !s.ok()) return s;
    return pair;
  }

  ~DaemonPair() {
    stub_.reset();
    if (network_ != nullptr) {
      (void)network_->StopAll();
      network_.reset();
    }
    std::error_code ec;
    if (!keep_state_dir_) fs::remove_all(state_dir_, ec);
  }

  // One MEASURE request for `pairs` pairs from alice to bob; `on_pair` gets
  // each pair as it arrives at the client.
  template <typename OnPair>
  absl::Status Entangle(uint32_t pairs, OnPair&& on_pair) {
    v1::EntangleRequest request;
    request.set_remote_node("bob");
    request.set_pairs(pairs);
    request.set_type(v1::EntangleRequest::MEASURE);
    request.set_basis(v1::EntangleRequest::BB84);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
    auto reader = stub_->Entangle(&context, request);
    v1::EntangleEvent event;
    uint32_t received = 0;
    while (reader->Read(&event)) {
      if (event.has_pair()) {
        on_pair(event.pair());
        ++received;
      }
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) {
      keep_state_dir_ = true;
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat(status.error_message(), " after ", received, " pairs; alice's log:\n",
                                       network_->LogTail("alice", 10), "\nlogs in ", state_dir_.string()));
    }
    if (received != pairs) {
      keep_state_dir_ = true;
      return absl::InternalError(absl::StrCat("asked for ", pairs, " pairs, got ", received));
    }
    return absl::OkStatus();
  }

  // CPU seconds used so far by alice (0) or bob (1).
  double CpuSeconds(int node) const { return ProcessCpuSeconds(pids_[node]).value_or(0.0); }
  // Context switches so far of alice (0) or bob (1), all threads.
  double ContextSwitches(int node) const { return ProcessContextSwitches(pids_[node]); }

 private:
  DaemonPair() = default;

  // Until alice reports its neighbour's peer stream up.
  absl::Status WaitConnected(absl::Duration timeout) {
    const absl::Time give_up = absl::Now() + timeout;
    std::string last = "no answer";
    while (absl::Now() < give_up) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::GetStatusResponse status;
      grpc::Status s = stub_->GetStatus(&context, v1::GetStatusRequest(), &status);
      if (s.ok()) {
        bool all = status.neighbours_size() > 0;
        for (const auto& n : status.neighbours()) all = all && n.connected();
        if (all) return absl::OkStatus();
        last = "bob not connected yet";
      } else {
        last = s.error_message();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return absl::DeadlineExceededError(absl::StrCat("alice and bob did not connect: ", last));
  }

  std::unique_ptr<LocalNetwork> network_;
  fs::path state_dir_;
  bool keep_state_dir_ = false;
  std::vector<std::string> addresses_;
  std::vector<pid_t> pids_;
  std::unique_ptr<v1::Node::Stub> stub_;
};

// Args: pairs per request, time scale S, memory qubits per node (0: the
// example's 2).
void BM_DaemonMeasurePairs(benchmark::State& state) {
  const auto pairs = static_cast<uint32_t>(state.range(0));
  const auto time_scale = static_cast<double>(state.range(1));
  const auto qubits = static_cast<int>(state.range(2));
  const bool insecure = state.range(3) == 0;
  absl::StatusOr<std::unique_ptr<DaemonPair>> daemons =
      DaemonPair::Start(time_scale, qubits, absl::StrCat(pairs, "-", state.range(1), "-", qubits), insecure);
  if (!daemons.ok()) return state.SkipWithError(daemons.status().ToString().c_str());
  DaemonPair& net = **daemons;
  // Warm up: peer stream, hardware plane channel, client channel.
  if (absl::Status s = net.Entangle(10, [](const v1::PairEvent&) {}); !s.ok()) {
    return state.SkipWithError(absl::StrCat("warm-up request failed: ", s.ToString()).c_str());
  }

  std::vector<double> wall_ms, daemon_ms, overhead_ms;
  const size_t expected = static_cast<size_t>(pairs) * static_cast<size_t>(state.max_iterations);
  wall_ms.reserve(expected);
  daemon_ms.reserve(expected);
  overhead_ms.reserve(expected);
  double total_wall_s = 0;
  const double cpu_alice = net.CpuSeconds(0);
  const double cpu_bob = net.CpuSeconds(1);
  const double switches = net.ContextSwitches(0) + net.ContextSwitches(1);
  for (auto _ : state) {
    const SteadyClock::time_point start = SteadyClock::now();
    absl::Status s = net.Entangle(pairs, [&](const v1::PairEvent& pair) {
      const double wall = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
      const double daemon = pair.latency_s() / time_scale * 1e3;
      wall_ms.push_back(wall);
      daemon_ms.push_back(daemon);
      overhead_ms.push_back(wall - daemon);
    });
    const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
    if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
    state.SetIterationTime(elapsed);
    total_wall_s += elapsed;
  }
  const double delivered = static_cast<double>(wall_ms.size());
  for (auto* v : {&wall_ms, &daemon_ms, &overhead_ms}) std::sort(v->begin(), v->end());
  state.SetItemsProcessed(static_cast<int64_t>(wall_ms.size()));
  state.counters["pairs_per_s"] = delivered / total_wall_s;
  state.counters["wall_p50_ms"] = Percentile(wall_ms, 0.5);
  state.counters["wall_p99_ms"] = Percentile(wall_ms, 0.99);
  state.counters["daemon_p50_ms"] = Percentile(daemon_ms, 0.5);
  state.counters["daemon_p99_ms"] = Percentile(daemon_ms, 0.99);
  state.counters["overhead_p50_ms"] = Percentile(overhead_ms, 0.5);
  state.counters["overhead_p99_ms"] = Percentile(overhead_ms, 0.99);
  state.counters["alice_cpu_us"] = (net.CpuSeconds(0) - cpu_alice) / delivered * 1e6;
  state.counters["bob_cpu_us"] = (net.CpuSeconds(1) - cpu_bob) / delivered * 1e6;
  state.counters["ctx_switches"] = (net.ContextSwitches(0) + net.ContextSwitches(1) - switches) / delivered;
}

// End to end across a chain of hops+1 daemons (ideal nodes, 1 km links, time
// scale 100): one network-layer MEASURE request of range(1) pairs from n0 to
// n<hops> per iteration; pairs per wall second and the wall-clock gap
// between consecutive pairs at the client (median, p99).
void BM_DaemonChainMeasurePairs(benchmark::State& state) {
  const int hops = static_cast<int>(state.range(0));
  const auto pairs = static_cast<uint32_t>(state.range(1));
  if (!fs::exists(QNETD_PATH)) return state.SkipWithError("qnetd not found: build it first (ninja qnetd)");
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("qnet-bench-chain-", getpid(), "-", hops);
  fs::create_directories(dir);
  const fs::path file = dir / "chain.yaml";
  {
    std::ofstream out(file);
    out << "network: bench-chain\nseed: 1\nnodes:\n";
    for (int i = 0; i <= hops; ++i) out << "  - {name: n" << i << ", hardware: ideal}\n";
    out << "links:\n";
    for (int i = 0; i < hops; ++i) out << "  - {between: [n" << i << ", n" << i + 1 << "], length_km: 1}\n";
  }
  LaunchOptions options;
  options.qnetd_path = QNETD_PATH;
  options.network_file = file.string();
  options.state_dir = (dir / "state").string();
  options.time_scale = 100;
  options.log_level = "warn";
  options.ready_timeout = absl::Seconds(20);
  auto network = LocalNetwork::Start(options);
  if (!network.ok()) return state.SkipWithError(network.status().ToString().c_str());
  const std::string head = *(*network)->Address("n0");
  v1::EntangleRequest request;
  request.set_remote_node(absl::StrCat("n", hops));
  request.set_type(v1::EntangleRequest::MEASURE);
  request.set_basis(v1::EntangleRequest::BB84);
  // Warm up (and wait for the routing adverts to reach n0).
  request.set_pairs(10);
  absl::Status warm = absl::UnavailableError("no attempt");
  for (int i = 0; i < 100 && !warm.ok(); ++i) {
    warm = RunEntangle(head, request, absl::Seconds(30)).status();
    if (!warm.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!warm.ok()) return state.SkipWithError(absl::StrCat("warm-up: ", warm.ToString()).c_str());
  request.set_pairs(pairs);
  std::vector<double> gaps_ms;
  double total_s = 0, simulated_s = 0;
  uint64_t delivered = 0;
  for (auto _ : state) {
    const SteadyClock::time_point start = SteadyClock::now();
    SteadyClock::time_point last = start;
    auto result = RunEntangle(head, request, absl::Seconds(300), [&](const v1::PairEvent&) {
      const SteadyClock::time_point now = SteadyClock::now();
      gaps_ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
      last = now;
    });
    const double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    state.SetIterationTime(elapsed);
    total_s += elapsed;
    simulated_s += result->summary.duration_s();
    delivered += result->pairs.size();
  }
  (void)(*network)->StopAll();
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::sort(gaps_ms.begin(), gaps_ms.end());
  state.SetItemsProcessed(static_cast<int64_t>(delivered));
  state.counters["pairs_per_s"] = static_cast<double>(delivered) / total_s;
  state.counters["simulated_pairs_per_s"] = static_cast<double>(delivered) / simulated_s;
  state.counters["gap_p50_ms"] = Percentile(gaps_ms, 0.5);
  state.counters["gap_p99_ms"] = Percentile(gaps_ms, 0.99);
}
BENCHMARK(BM_DaemonChainMeasurePairs)
    ->Args({1, 500})
    ->Args({2, 500})
    ->Args({4, 500})
    ->Iterations(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// Request sizes with the example as it is; the same in real time (S = 1);
// then more generations in flight (8 and 32 memory qubits per node). Fixed
// iteration counts: each run (one daemon start) delivers a few thousand
// pairs and stays within seconds.
void DaemonArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"pairs", "scale", "qubits", "tls"});
  b->UseManualTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({1, 100, 0, 1})->Iterations(200);
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({100, 100, 0, 1})->Iterations(20);
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({1000, 100, 0, 1})->Iterations(3);
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({10000, 100, 0, 1})->Iterations(1);
// The issue-13 target's request: one 20,000-pair request, physics far from the limit.
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({20000, 100, 0, 1})->Iterations(1);
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({1000, 1, 0, 1})->Iterations(3);
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({10000, 100, 8, 1})->Iterations(1);
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({10000, 100, 32, 1})->Iterations(1);
// What mutual TLS costs: the same requests between plaintext daemons.
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({10000, 100, 0, 0})->Iterations(1);
BENCHMARK(BM_DaemonMeasurePairs)->Apply(DaemonArgs)->Args({10000, 100, 8, 0})->Iterations(1);

}  // namespace
}  // namespace qnet::cli
