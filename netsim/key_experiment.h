// Runs a key request (QKD in blocks: BBM92, E91, BB84 between neighbours, or
// the trusted-node relay) between two nodes of a simulated network through
// their node stacks' key agreement, and checks that both ends hold the same
// keys afterwards. What `qnetsim --qkd` runs: the same code path as the
// daemon's Node.Qkd, on virtual time, so key rate vs distance studies need
// no daemons.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "keydist/key_agreement.h"
#include "netsim/simulated_network.h"

namespace qnet::netsim {

struct KeyExperimentResult {
  keydist::KeyAgreementResult agreement;  // the initiator's view
  // Every block's key, fetched by id from the peer's key store, equals the
  // initiator's copy; otherwise `keys_problem` says which key is missing at
  // the peer or differs.
  bool keys_match = false;
  std::string keys_problem;
  uint64_t events = 0;
};

// Lets the routing adverts spread first; fails with the key agreement's
// error, or DeadlineExceeded after `simulated_limit` for the whole request
// (each block has its own timeout in `request.block`).
absl::StatusOr<KeyExperimentResult> RunKeyExperiment(SimulatedNetwork& network, const std::string& origin,
                                                     keydist::KeyRequest request, Duration simulated_limit);

}  // namespace qnet::netsim
