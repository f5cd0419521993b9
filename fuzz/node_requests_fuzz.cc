// Fuzz target: every Node RPC request with a body, through the handlers the
// daemon's Node service calls (daemon/daemon.cc's NodeService only posts
// them to the loop): EntanglementService (Entangle, GetOutcomes,
// MeasureQubit), TeleportService (Teleport), GhzService (Ghz),
// CircuitService (RunCircuit), QkdService (Qkd, GetKey) and HandleEavesdrop
// (Eavesdrop). GetStatus and GetRoutes take empty requests.
// The services run, as in qnetd, on every node of a 3-node chain, here over
// the simulator's stacks (their NodeContext), so a request's whole life -
// validation, the layers' work, the far ends, streaming - runs within the
// input's bounded simulated time; then open calls are cancelled as when the
// client goes away, and everything is torn down.
//
// Input: [node] then up to 8 of [rpc][2-byte length][request bytes]; the
// simulator runs ((rpc >> 4) + 1) x 200 us between requests. The RPC is
// rpc % kRpcCount, except that a low nibble of 0xF is Ghz and 0xE RunCircuit
// (added later, so the earlier corpus keeps its meaning).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "daemon/daemon.h"
#include "daemon/circuit_service.h"
#include "daemon/entanglement_service.h"
#include "daemon/ghz_service.h"
#include "daemon/lag_monitor.h"
#include "daemon/log.h"
#include "daemon/qkd_service.h"
#include "daemon/teleport_service.h"
#include "daemon/topology.h"
#include "fuzz/fuzz_common.h"
#include "fuzz/fuzz_network.h"
#include "netsim/simulated_network.h"

namespace qnet::fuzz {
namespace {

constexpr const char* kNodes[] = {"alice", "bob", "charlie"};
constexpr int kMaxRequests = 8;

enum Rpc : uint8_t {
  kEntangle, kGetOutcomes, kMeasureQubit, kTeleport, kQkd, kGetKey, kEavesdrop, kRpcCount,
  kRunCircuit = 0x0E, kGhz = 0x0F
};

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// One node's Node-service back ends, as daemon::Daemon::Init builds them.
struct NodeServices {
  daemon::DaemonTopology topology;
  daemon::LagMonitor lag{1.0};
  daemon::Logger log;
  std::unique_ptr<daemon::EntanglementService> entanglement;
  std::unique_ptr<daemon::TeleportService> teleport;
  std::unique_ptr<daemon::GhzService> ghz;
  std::unique_ptr<daemon::CircuitService> circuits;
  std::unique_ptr<daemon::QkdService> qkd;

  NodeServices(netsim::SimulatedNetwork& net, const std::string& name)
      : topology(*daemon::TopologyFromConfig(net.config(), name)), log(name, daemon::LogLevel::kError) {
    stack::NodeStack& stack = *net.node(name);
    NodeContext& context = *net.channels().FindNode(name);
    lag.Configure(name, std::chrono::microseconds(1));
    // A short hold, so that held pairs expire within an input's run.
    entanglement = std::make_unique<daemon::EntanglementService>(context, stack.link(), &stack.network(),
                                                                 stack.device(), topology, lag, log,
                                                                 std::chrono::milliseconds(5));
    Check(entanglement->Start().ok(), "entanglement service starts");
    teleport = std::make_unique<daemon::TeleportService>(context, stack.transport(), stack.network(), stack.device(),
                                                         &stack.device(), lag, log);
    Check(teleport->Start().ok(), "teleport service starts");
    ghz = std::make_unique<daemon::GhzService>(context, stack.ghz(), lag, log);
    circuits = std::make_unique<daemon::CircuitService>(context, stack.circuits(), lag, log);
    qkd = std::make_unique<daemon::QkdService>(stack, lag, log);
  }
  ~NodeServices() {  // as Daemon::Shutdown: the services go before the stack
    qkd.reset();
    circuits.reset();
    ghz.reset();
    teleport.reset();
    entanglement.reset();
  }
};

// A streaming call's end: exactly once is the contract, at most once is
// what can be checked after cancellation.
struct Ends {
  int count = 0;
};

template <typename Event>
auto Push() {
  return [](Event) {};
}

}  // namespace

std::vector<std::string> Seeds() {
  auto input = [](uint8_t node, std::vector<std::pair<uint8_t, std::string>> calls) {
    std::string s(1, static_cast<char>(node));
    for (auto& [rpc, body] : calls) {
      s.push_back(static_cast<char>(rpc));
      s += ChunkBytes(body);
    }
    return s;
  };
  std::vector<std::string> seeds;
  v1::EntangleRequest e;
  e.set_remote_node("bob");
  e.set_pairs(2);
  seeds.push_back(input(0, {{kEntangle, e.SerializeAsString()}}));
  e.set_type(v1::EntangleRequest::MEASURE);
  e.set_basis(v1::EntangleRequest::CHSH);
  e.set_remote_node("charlie");
  seeds.push_back(input(0, {{kEntangle, e.SerializeAsString()}}));
  v1::GetOutcomesRequest o;
  o.set_origin("alice");
  o.add_entanglement_ids("alice-charlie#c1.0");
  seeds.push_back(input(2, {{0x30 | kGetOutcomes, o.SerializeAsString()}}));
  seeds.push_back(input(0, {{0x30 | kEntangle, e.SerializeAsString()}}));
  v1::EntangleRequest keep;
  keep.set_remote_node("bob");
  keep.set_pairs(1);
  keep.set_min_fidelity(0.5);
  keep.set_timeout_s(0.01);
  v1::MeasureQubitRequest m;
  m.set_entanglement_id("alice-bob#1");
  m.set_axis(v1::MeasureQubitRequest::X);
  seeds.push_back(input(0, {{0x20 | kEntangle, keep.SerializeAsString()}, {kMeasureQubit, m.SerializeAsString()}}));
  m.set_xz_angle(0.785);
  seeds.push_back(input(1, {{kMeasureQubit, m.SerializeAsString()}}));
  v1::TeleportRequest t;
  t.set_destination("charlie");
  t.set_named_state("+i");
  t.set_shots(2);
  seeds.push_back(input(0, {{kTeleport, t.SerializeAsString()}}));
  t.mutable_angles()->set_theta(1.0);
  t.mutable_angles()->set_phi(-2.0);
  t.set_destination("bob");
  t.set_timeout_s(0.02);
  seeds.push_back(input(2, {{kTeleport, t.SerializeAsString()}}));
  v1::GhzRequest g;
  g.add_members("bob");
  g.add_members("charlie");
  g.set_shots(5);
  seeds.push_back(input(0, {{kGhz, g.SerializeAsString()}}));
  g.set_timeout_s(0.001);
  g.set_shots(40);
  seeds.push_back(input(1, {{0x1F, g.SerializeAsString()}, {kGhz, g.SerializeAsString()}}));
  v1::RunCircuitRequest rc;
  rc.set_program("h alice.q\ncnot alice.q charlie.q\nmeasure alice.q\nmeasure charlie.q x\n");
  rc.set_shots(3);
  seeds.push_back(input(1, {{kRunCircuit, rc.SerializeAsString()}}));
  rc.set_program("x bob.q\ncnot bob.q bob.r\nrz bob.r 0.5\ncnot bob.r alice.s\nmeasure alice.s y\n");
  rc.set_timeout_s(0.002);
  seeds.push_back(input(0, {{0x2E, rc.SerializeAsString()}}));
  v1::QkdRequest q;
  q.set_peer("charlie");
  q.set_bits(8);
  q.set_pairs_per_block(64);
  q.set_timeout_s(0.05);
  q.set_max_blocks(1);
  seeds.push_back(input(0, {{kQkd, q.SerializeAsString()}}));
  q.set_protocol(v1::QkdRequest::E91);
  seeds.push_back(input(0, {{kQkd, q.SerializeAsString()}}));
  q.set_protocol(v1::QkdRequest::BB84);
  q.set_peer("bob");
  seeds.push_back(input(1, {{kQkd, q.SerializeAsString()}}));
  q.set_protocol(v1::QkdRequest::RELAY);
  q.set_peer("alice");
  q.set_show_key(true);
  seeds.push_back(input(2, {{kQkd, q.SerializeAsString()}}));
  v1::GetKeyRequest k;
  k.set_key_id("alice-charlie:1");
  seeds.push_back(input(0, {{kGetKey, k.SerializeAsString()}}));
  v1::EavesdropRequest ev;
  ev.set_neighbour("bob");
  ev.set_set(true);
  ev.set_fraction(0.5);
  seeds.push_back(input(0, {{kEavesdrop, ev.SerializeAsString()}, {kEntangle, keep.SerializeAsString()}}));
  ev.set_set(false);
  seeds.push_back(input(1, {{kEavesdrop, ev.SerializeAsString()}}));
  return seeds;
}

}  // namespace qnet::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qnet;
  using fuzz::Check;
  if (size > 65536) return 0;
  fuzz::FuzzReader in(data, size);
  std::unique_ptr<netsim::SimulatedNetwork> net = fuzz::BuildFuzzNetwork();
  std::vector<std::unique_ptr<fuzz::NodeServices>> services;
  for (const char* name : fuzz::kNodes) services.push_back(std::make_unique<fuzz::NodeServices>(*net, name));
  fuzz::RunBounded(net->simulator(), std::chrono::microseconds(200), 5000);  // routes converge
  fuzz::NodeServices& node = *services[in.Byte() % 3];

  std::vector<std::shared_ptr<fuzz::Ends>> ends;
  auto end = [&ends] {
    auto e = std::make_shared<fuzz::Ends>();
    ends.push_back(e);
    return [e](absl::Status) { Check(++e->count == 1, "a call ends once"); };
  };
  std::vector<uint64_t> entangles, teleports, ghzs, circuits, qkds;
  for (int i = 0; i < fuzz::kMaxRequests && !in.empty(); ++i) {
    const uint8_t rpc = in.Byte();
    const std::string body = in.Chunk();
    const int low = rpc & 0x0F;
    switch (low == fuzz::kGhz || low == fuzz::kRunCircuit ? low : rpc % fuzz::kRpcCount) {
      case fuzz::kEntangle: {
        v1::EntangleRequest r;
        if (!r.ParseFromString(body)) break;
        auto id = node.entanglement->Entangle(r, {.event = fuzz::Push<v1::EntangleEvent>(), .end = end()});
        if (id.ok()) entangles.push_back(*id);
        break;
      }
      case fuzz::kGetOutcomes: {
        v1::GetOutcomesRequest r;
        if (r.ParseFromString(body)) (void)node.entanglement->Outcomes(r);
        break;
      }
      case fuzz::kMeasureQubit: {
        v1::MeasureQubitRequest r;
        if (!r.ParseFromString(body)) break;
        auto done = std::make_shared<int>(0);
        node.entanglement->MeasureQubit(r, [done](absl::StatusOr<v1::MeasureQubitResponse>) {
          Check(++*done == 1, "MeasureQubit answers once");
        });
        Check(*done == 0, "MeasureQubit answers on the loop, not inside the call");
        break;
      }
      case fuzz::kTeleport: {
        v1::TeleportRequest r;
        if (!r.ParseFromString(body)) break;
        auto id = node.teleport->Teleport(r, {.event = fuzz::Push<v1::TeleportEvent>(), .end = end()});
        if (id.ok()) teleports.push_back(*id);
        break;
      }
      case fuzz::kGhz: {
        v1::GhzRequest r;
        if (!r.ParseFromString(body)) break;
        auto id = node.ghz->Ghz(r, {.event = fuzz::Push<v1::GhzEvent>(), .end = end()});
        if (id.ok()) ghzs.push_back(*id);
        break;
      }
      case fuzz::kRunCircuit: {
        v1::RunCircuitRequest r;
        if (!r.ParseFromString(body)) break;
        auto id = node.circuits->RunCircuit(r, {.event = fuzz::Push<v1::RunCircuitEvent>(), .end = end()});
        if (id.ok()) circuits.push_back(*id);
        break;
      }
      case fuzz::kQkd: {
        v1::QkdRequest r;
        if (!r.ParseFromString(body)) break;
        auto id = node.qkd->Qkd(r, {.event = fuzz::Push<v1::QkdEvent>(), .end = end()});
        if (id.ok()) qkds.push_back(*id);
        break;
      }
      case fuzz::kGetKey: {
        v1::GetKeyRequest r;
        if (r.ParseFromString(body)) (void)node.qkd->GetKey(r);
        break;
      }
      case fuzz::kEavesdrop: {
        v1::EavesdropRequest r;
        if (r.ParseFromString(body)) (void)daemon::HandleEavesdrop(*net->node(node.topology.self), node.log, r);
        break;
      }
    }
    fuzz::RunBounded(net->simulator(), std::chrono::microseconds(200) * ((rpc >> 4) + 1), 20000);
  }
  fuzz::RunBounded(net->simulator(), std::chrono::milliseconds(20), 100000);
  // The client goes away: what is still open is cancelled (a no-op for
  // calls that have ended).
  for (uint64_t id : entangles) node.entanglement->Cancel(id);
  for (uint64_t id : teleports) node.teleport->Cancel(id);
  for (uint64_t id : ghzs) node.ghz->Cancel(id);
  for (uint64_t id : circuits) node.circuits->Cancel(id);
  for (uint64_t id : qkds) node.qkd->Cancel(id);
  fuzz::RunBounded(net->simulator(), std::chrono::milliseconds(1), 10000);
  services.clear();
  return 0;
}
