// Test harness for the network layer: chain and mesh network files, an
// event recorder for end-to-end events, and pairing of both ends' MEASURE
// records for apps::AnalysePairs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "apps/pair_statistics.h"
#include "gtest/gtest.h"
#include "network/network_service.h"
#include "physical/quantum_device.h"
#include "tests/link/sim_stack_network.h"

namespace qnet::testing {

// A chain n0 - n1 - ... - n<hops> of `hardware` nodes, `length_km` links,
// with extra per-node and per-link YAML lines.
inline std::string ChainYaml(int hops, const std::string& hardware = "ideal", double length_km = 1.0,
                             const std::string& node_extra = "", const std::string& link_extra = "") {
  std::string yaml = absl::StrCat("network: chain", hops, "\nnodes:\n");
  for (int i = 0; i <= hops; ++i) {
    absl::StrAppend(&yaml, "  - name: n", i, "\n    hardware: ", hardware, "\n", node_extra);
  }
  absl::StrAppend(&yaml, "links:\n");
  for (int i = 0; i < hops; ++i) {
    absl::StrAppend(&yaml, "  - between: [n", i, ", n", i + 1, "]\n    length_km: ", length_km, "\n", link_extra);
  }
  return yaml;
}

// Records one party's end-to-end events; KEEP slots are freed on delivery
// (after `on_pair` has looked at them) when `device` is given.
struct NetLog {
  std::vector<network::IncomingRequest> incoming;
  std::vector<network::PairDelivered> pairs;
  std::vector<network::RequestCompleted> completed;
  std::vector<network::RequestFailed> failed;

  bool Ended() const { return !completed.empty() || !failed.empty(); }

  network::NetworkEventHandler Handler(physical::QuantumDevice* free_kept = nullptr,
                                       std::function<void(const network::PairDelivered&)> on_pair = nullptr) {
    return [this, free_kept, on_pair](const network::NetworkEvent& event) {
      if (const auto* e = std::get_if<network::IncomingRequest>(&event)) incoming.push_back(*e);
      if (const auto* e = std::get_if<network::PairDelivered>(&event)) {
        pairs.push_back(*e);
        if (on_pair) on_pair(*e);
        if (free_kept != nullptr && e->slot >= 0) {
          EXPECT_TRUE(free_kept->Free(e->slot).ok());
        }
      }
      if (const auto* e = std::get_if<network::RequestCompleted>(&event)) completed.push_back(*e);
      if (const auto* e = std::get_if<network::RequestFailed>(&event)) failed.push_back(*e);
    };
  }
};

// Both ends' logs of one end-to-end request.
struct Ends {
  NetLog head, tail;
};

// Runs one request from n0 to n<hops> (the tail frees KEEP slots as they
// come) and waits for both ends to finish.
inline void RunRequest(SimStackNetwork& net, int hops, const network::EndToEndRequest& request, Ends& run,
                       Duration limit) {
  const std::string tail = absl::StrCat("n", hops);
  ASSERT_TRUE(net.node(tail).network().RegisterReceiver(request.purpose_id,
                                                        run.tail.Handler(&net.device(tail))).ok());
  net.RunFor(std::chrono::milliseconds(1));  // routing adverts spread
  auto id = net.node("n0").network().Create(request, run.head.Handler(&net.device("n0")));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(net.RunUntil([&] { return run.head.Ended() && run.tail.Ended(); }, limit))
      << "head pairs " << run.head.pairs.size() << " tail pairs " << run.tail.pairs.size();
}

// Both ends' MEASURE records matched by end-to-end id; the head holds the
// Bell state's first qubit.
inline std::vector<apps::MeasuredPair> MatchEnds(const std::vector<network::PairDelivered>& head,
                                                 const std::vector<network::PairDelivered>& tail) {
  std::map<std::string, const network::PairDelivered*> by_id;
  for (const auto& p : tail) by_id[p.id.ToString()] = &p;
  std::vector<apps::MeasuredPair> matched;
  for (const auto& p : head) {
    auto it = by_id.find(p.id.ToString());
    if (it == by_id.end()) continue;
    EXPECT_EQ(p.bell_state, it->second->bell_state) << p.id.ToString();
    matched.push_back({p.bell_state, p.basis, it->second->basis, p.outcome, it->second->outcome});
  }
  return matched;
}

// After the teardowns have travelled (`settle`), every node's network and
// link layers hold nothing and all memory is free.
inline void ExpectNetworkClean(SimStackNetwork& net, Duration settle = std::chrono::milliseconds(50)) {
  net.RunFor(settle);
  for (const config::NodeConfig& n : net.config().nodes) {
    stack::NodeStack* s = &net.node(n.name);
    EXPECT_EQ(s->network().active_circuits(), 0u) << n.name;
    EXPECT_EQ(s->network().reserved_slots(), 0) << n.name;
    EXPECT_EQ(s->network().held_slots(), 0) << n.name;
  }
  net.ExpectClean();
}

}  // namespace qnet::testing
