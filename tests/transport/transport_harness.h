// Test harness for the transport layer: records both ends of teleportations
// and reads each delivered qubit's true state (simulation only) before the
// destination measures or frees it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "physical/quantum_device.h"
#include "tests/network/network_harness.h"
#include "transport/qubit_state.h"
#include "transport/transport_layer.h"

namespace qnet::testing {

struct SentRecord {
  transport::TransferId id = 0;
  absl::StatusOr<transport::TeleportReport> result;
};

struct ReceivedRecord {
  transport::QubitReceived qubit;
  quantum::Matrix rho;  // the qubit's true state when handed up (after the correction)
  int outcome = -1;     // when the test measured it
};

// Sources' outcomes and the destination's qubits. The destination reads each
// qubit's true state, measures it in `basis_for(id)` if given, and frees it.
struct TeleportLog {
  std::vector<SentRecord> sent;
  std::vector<ReceivedRecord> received;
  std::vector<transport::ReceiveFailed> receive_failed;
  std::map<transport::TransferId, transport::BlochAngles> intended;
  std::function<std::optional<quantum::Basis>(transport::TransferId)> basis_for;
  size_t measuring = 0;

  transport::TeleportHandler SourceHandler() {
    return [this](transport::TransferId id, absl::StatusOr<transport::TeleportReport> result) {
      sent.push_back({id, std::move(result)});
    };
  }

  transport::ReceiveHandler DestinationHandler(physical::SimulatedDevice* device) {
    return [this, device](const transport::ReceiveEvent& event) {
      if (const auto* f = std::get_if<transport::ReceiveFailed>(&event)) {
        receive_failed.push_back(*f);
        return;
      }
      const auto& q = std::get<transport::QubitReceived>(event);
      const size_t index = received.size();
      received.push_back({q, quantum::Matrix(), -1});
      physical::SimulatedDevice::SimulationOnlyTrueState(
          {{device, q.slot}}, [this, index](absl::StatusOr<quantum::Matrix> rho) {
            ASSERT_TRUE(rho.ok()) << rho.status();
            received[index].rho = *rho;
          });
      std::optional<quantum::Basis> basis = basis_for ? basis_for(q.id) : std::nullopt;
      if (!basis.has_value()) {
        EXPECT_TRUE(device->Free(q.slot).ok());
        return;
      }
      ++measuring;
      const int slot = q.slot;
      device->Measure(slot, *basis, [this, device, index, slot](absl::StatusOr<int> outcome) {
        --measuring;
        ASSERT_TRUE(outcome.ok()) << outcome.status();
        received[index].outcome = *outcome;
        EXPECT_TRUE(device->Free(slot).ok());
      });
    };
  }

  // Fidelity of a received qubit's true state with the state its source sent.
  double TrueFidelity(const ReceivedRecord& r) const {
    auto it = intended.find(r.qubit.id);
    EXPECT_NE(it, intended.end()) << "no intended state for transfer " << r.qubit.id;
    if (it == intended.end()) return 0.0;
    const quantum::Vector psi = transport::StateVector(it->second);
    return (psi.adjoint() * r.rho * psi)(0, 0).real();
  }
};

// The network is clean (network_harness.h) and no transport layer holds anything.
inline void ExpectTransportClean(SimStackNetwork& net, Duration settle = std::chrono::milliseconds(50)) {
  net.RunFor(settle);
  for (const config::NodeConfig& n : net.config().nodes) {
    stack::NodeStack* s = &net.node(n.name);
    EXPECT_EQ(s->transport().held_slots(), 0) << n.name;
    EXPECT_EQ(s->transport().active_outgoing(), 0u) << n.name;
    EXPECT_EQ(s->transport().active_incoming(), 0u) << n.name;
  }
  ExpectNetworkClean(net, Duration(0));
}

}  // namespace qnet::testing
