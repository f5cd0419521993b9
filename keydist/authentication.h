// The authentication key pools of one node: for every other node it runs
// sessions with, a qkd::AuthenticationKeyPool (qkd/wegman_carter.h) that
// authenticates the two ends' session messages end to end, so repeaters
// and relays on the path can forward them but not forge or alter them.
//
// Bootstrap ("pre-shared secret") assumption: Wegman-Carter authentication
// needs some secret shared before the first key exists. Here each pair's
// first segment ("bootstrap") is drawn from a seeded generator keyed by a
// network-wide secret and the two node names (sorted), so both ends derive
// the same bits and no other pair's. The node stack takes the network-wide
// secret from the network file (its name and seed) - which every node holds,
// so in this simulator it stands in for a secret installed out of band; it
// is not secret from anyone who reads the file. A real deployment installs
// each pair's initial pool out of band (a courier, a trusted set-up) and
// keeps the pool on disk across restarts. After that every session refills
// its pair's pool from the key it makes (KeyDistribution takes exactly the
// bits its messages used off the front of the key), so the pool never
// shrinks while sessions succeed.
//
// The pools live in memory; a node that restarts (a new stack) derives the
// bootstrap again and its peers refuse the pad words it reuses (the
// pool never accepts a word twice), so authentication with it fails until
// the pool is re-installed - by design: a pad is never silently reused.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "qkd/wegman_carter.h"

namespace qnet::keydist {

// Bits of each pair's bootstrap segment: room for a few dozen sessions'
// messages (~100 words each) in flight before any refill.
inline constexpr uint64_t kDefaultAuthenticationBootstrapBits = 1 << 16;

class AuthenticationPools {
 public:
  AuthenticationPools(std::string self, uint64_t network_secret,
                      uint64_t bootstrap_bits = kDefaultAuthenticationBootstrapBits);

  // The pool shared with `peer`, bootstrapped on first use.
  qkd::AuthenticationKeyPool& With(const std::string& peer);

  // The bootstrap bits of the pair {a, b} (either order gives the same).
  static qkd::BitString BootstrapBits(uint64_t network_secret, const std::string& a, const std::string& b,
                                      uint64_t bits);

  const std::string& self() const { return self_; }

 private:
  std::string self_;
  uint64_t network_secret_;
  uint64_t bootstrap_bits_;
  std::map<std::string, qkd::AuthenticationKeyPool> pools_;
};

}  // namespace qnet::keydist
