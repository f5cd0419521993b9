// What happens to a memory qubit while it waits: the node's T1/T2 decay and
// its depolarising noise, as one Kraus set. The simulated device applies it to
// the state; the calibration applies the same set to predict fidelities, so
// prediction and simulation cannot drift apart.
#pragma once

#include <vector>

#include "physical/params.h"
#include "quantum/quantum_system.h"

namespace qnet::physical {

// True when an idle qubit of this node changes at all (some finite time
// constant).
bool HasIdleNoise(const NodeHardware& node);

// Kraus operators of `seconds` of waiting (>= 0): relaxation (T1), dephasing
// (T2) and depolarising (an idle qubit kept with exp(-t/tau), else I/2)
// acting together, the exact solution of their joint master equation, so
// that two waits compose to one (without depolarising it is
// quantum::channels::MemoryDecay). Empty when the node has no idle noise or
// seconds is 0.
std::vector<quantum::Matrix> IdleNoise(const NodeHardware& node, double seconds);

}  // namespace qnet::physical
