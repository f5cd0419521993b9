// What the daemons' lag monitor (daemon/lag_monitor.h) costs: it runs on
// every scaled timer, peer message and waiting device operation, so it must
// stay far below the microseconds a daemon spends per event.
#include <benchmark/benchmark.h>

#include "daemon/lag_monitor.h"

namespace qnet::daemon {
namespace {

void BM_LagMonitorOnEvent(benchmark::State& state) {
  LagMonitor lag(/*time_scale=*/100.0);
  lag.Configure("alice", std::chrono::microseconds(1));
  auto t = LagMonitor::Clock::now();
  bool late = false;
  for (auto _ : state) {
    // Alternately late and on time, 1 us apart in wall time.
    t += std::chrono::microseconds(1);
    late = !late;
    lag.OnEvent(t, t + std::chrono::nanoseconds(late ? 20000 : 50));
  }
  benchmark::DoNotOptimize(lag.own_behind_ns());
}
BENCHMARK(BM_LagMonitorOnEvent);

void BM_LagMonitorOwnReport(benchmark::State& state) {
  LagMonitor lag(100.0);
  auto t = LagMonitor::Clock::now();
  for (int i = 0; i < 1000; ++i) lag.OnEvent(t + std::chrono::microseconds(i), t + std::chrono::microseconds(i + 3));
  for (auto _ : state) benchmark::DoNotOptimize(lag.OwnReport(t + std::chrono::milliseconds(1)));
}
BENCHMARK(BM_LagMonitorOwnReport);

}  // namespace
}  // namespace qnet::daemon
