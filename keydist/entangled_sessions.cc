// BBM92 and E91: key from the network layer's end-to-end MEASURE pairs.
//
// A session, initiator I and responder R (the frame, steps 1 and 4, is the
// session core's, key_distribution.cc):
//  1. I sends an OFFER (protocol, pairs, timeout, post-processing options:
//     both ends must use the same). R registers a network receiver for the
//     session on a fresh pair purpose id and answers ACCEPT with it (or END
//     with why not), so every pair R gets is known to be the session's.
//  2. I asks the network layer for `pairs` MEASURE pairs with R on that
//     purpose id: BasisChoice::kBb84 (each end Z or X), or kE91 (I: Z or X;
//     R: Z, X, B0 or B1). I is the head, R the tail; a pair's id is its
//     end-to-end sequence number (one circuit per request). R rewrites each
//     outcome into the PHI+ frame of the delivered Bell state: a frame
//     X^x Z^z on the head's qubit acts on R's measurement axis at angle t in
//     the X-Z plane as t -> -t (Z) and t -> pi - t (X); on Z and X that is
//     a flip where the state anti-correlates (PHI-: X, PSI+: Z, PSI-: both),
//     and B0/B1 may also swap.
//  3. E91 only: R sends its B0/B1 test pairs (ids, settings, outcomes); I
//     answers with its outcomes of those pairs; each end computes the same
//     CHSH S = E(Z,B0) + E(Z,B1) + E(X,B0) - E(X,B1) with its standard
//     error (chsh.h) and aborts when S < e91_min_chsh. The test pairs leave
//     the key.
//  4. Both ends run post-processing on their Z/X detections; its messages
//     travel as datagrams. The result (key, report, key id) reaches I's done
//     handler and R's responder handler.
#include <algorithm>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "keydist/chsh.h"
#include "keydist/key_distribution.h"
#include "keydist/qkd_wire.h"
#include "keydist/session_internals.h"
#include "quantum/bell.h"

namespace qnet::keydist {
namespace {

using link::MeasurementBasis;

bool IsTestBasis(MeasurementBasis b) { return b == MeasurementBasis::kChshB0 || b == MeasurementBasis::kChshB1; }

// A measurement axis in the X-Z plane as its angle from Z towards X, in
// eighths of a turn (pi/4); Y is not in the plane.
std::optional<int> EighthTurns(MeasurementBasis b) {
  switch (b) {
    case MeasurementBasis::kZ:
    case MeasurementBasis::kChshA0: return 0;
    case MeasurementBasis::kX:
    case MeasurementBasis::kChshA1: return 2;
    case MeasurementBasis::kChshB0: return 1;
    case MeasurementBasis::kChshB1: return -1;
    case MeasurementBasis::kY: return std::nullopt;
  }
  return std::nullopt;
}

// The tail's measurement of a pair delivered in Bell state `frame`, as the
// measurement of a PHI+ pair that gives the same statistics. The frame
// X^x Z^z sits on the head's qubit; moved to the tail's qubit it conjugates
// the tail's observable, turning the axis angle t into -t (Z) and pi - t (X).
// An angle outside {0, pi/4, pi/2, -pi/4} is the opposite of one inside
// (sigma(t + pi) = -sigma(t)): the same setting with the outcome flipped.
std::optional<std::pair<MeasurementBasis, bool>> ToPhiPlusFrame(quantum::BellState frame, MeasurementBasis basis,
                                                                bool outcome) {
  std::optional<int> turns = EighthTurns(basis);
  if (!turns.has_value()) return std::nullopt;
  int t = *turns;
  if (quantum::ZBit(frame)) t = -t;
  if (quantum::XBit(frame)) t = 4 - t;
  t = ((t % 8) + 8) % 8;
  bool flip = false;
  if (t >= 3 && t <= 6) {
    t = (t + 4) % 8;
    flip = true;
  }
  const MeasurementBasis out = t == 0   ? MeasurementBasis::kZ
                               : t == 2 ? MeasurementBasis::kX
                               : t == 1 ? MeasurementBasis::kChshB0
                                        : MeasurementBasis::kChshB1;
  return std::pair{out, outcome != flip};
}

}  // namespace

void KeyDistribution::OnHeadEvent(const SessionKey& key, const network::NetworkEvent& event) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;  // ended meanwhile; its request was cancelled
  Session& s = it->second;
  if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
    if (p->request_id == s.request) RecordPair(s, *p);
    return;
  }
  if (const auto* c = std::get_if<network::RequestCompleted>(&event)) {
    if (c->request_id != s.request) return;
    s.request = 0;
    OnPairsDone(key);
    return;
  }
  if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
    if (f->request_id != s.request) return;
    s.request = 0;
    Fail(key,
         network::ToStatus(f->error, absl::StrCat("QKD session ", key.id, " with ", s.peer, ": the network layer ",
                                                  "delivered ", f->pairs_delivered, " of ", s.options.pairs,
                                                  " pairs: ", f->message)),
         true);
  }
}

void KeyDistribution::OnTailEvent(const SessionKey& key, const network::NetworkEvent& event) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  if (const auto* in = std::get_if<network::IncomingRequest>(&event)) {
    if (in->origin != s.peer || s.request != 0 || s.stage != Stage::kMeasuring ||
        in->request.type != link::RequestType::kMeasure) {
      // Not the session's request: nothing else may use its purpose id.
      ++stats_.stray_messages;
      (void)network_.Cancel(in->request_id);
      return;
    }
    s.request = in->request_id;
    s.path = in->path;
    return;
  }
  if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
    if (s.request != 0 && p->request_id == s.request) RecordPair(s, *p);
    return;
  }
  if (const auto* c = std::get_if<network::RequestCompleted>(&event)) {
    if (s.request == 0 || c->request_id != s.request) return;
    s.request = 0;
    OnPairsDone(key);
    return;
  }
  if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
    if (s.request == 0 || f->request_id != s.request) return;
    s.request = 0;
    Fail(key,
         network::ToStatus(f->error, absl::StrCat("QKD session ", key.id, " from ", s.peer,
                                                  ": the network layer delivered ", f->pairs_delivered, " of ",
                                                  s.options.pairs, " pairs: ", f->message)),
         true);
  }
}

void KeyDistribution::RecordPair(Session& s, const network::PairDelivered& pair) {
  if (pair.type != link::RequestType::kMeasure || pair.outcome < 0) {
    ++s.stray_pairs;
    return;
  }
  // One request runs on one circuit, so its sequence numbers name its pairs
  // alike at both ends.
  if (!s.circuit.has_value()) s.circuit = pair.id.circuit;
  if (*s.circuit != pair.id.circuit || !s.pair_ids.insert(pair.id.sequence).second) {
    ++s.stray_pairs;
    return;
  }
  if (s.path.empty()) s.path = pair.path;
  Measured m{pair.id.sequence, pair.basis, pair.outcome != 0};
  if (!s.initiator) {
    std::optional<std::pair<MeasurementBasis, bool>> corrected =
        ToPhiPlusFrame(pair.bell_state, pair.basis, pair.outcome != 0);
    if (!corrected.has_value()) {
      ++s.stray_pairs;
      return;
    }
    m.basis = corrected->first;
    m.outcome = corrected->second;
  }
  s.measured.push_back(m);
  // While measuring, progress every 1% of the pairs: through daemons a block
  // can take minutes, and the user should see it move at least every ~2 s
  // (qnetctl shows at most about one line a second of it).
  const size_t step = std::max<size_t>(1, s.options.pairs / 100);
  if (s.stage == Stage::kMeasuring && s.measured.size() % step == 0 && s.measured.size() < s.options.pairs) {
    EmitProgress(s, kMeasuring, /*again=*/true);
  }
}

void KeyDistribution::OnPairsDone(const SessionKey& key) {
  Session& s = sessions_.at(key);
  EmitProgress(s, kMeasured);
  if (s.options.protocol != QkdProtocol::kE91) {
    StartPostProcessing(key, {});
    return;
  }
  s.stage = Stage::kTesting;
  if (!s.initiator) {
    // The tail opens the CHSH test with its B0/B1 pairs.
    std::vector<Measured> tests;
    for (const Measured& m : s.measured) {
      if (IsTestBasis(m.basis)) tests.push_back(m);
    }
    std::sort(tests.begin(), tests.end(), [](const Measured& a, const Measured& b) { return a.pair_id < b.pair_id; });
    std::vector<uint64_t> ids;
    qkd::BitString second, outcomes;
    for (const Measured& m : tests) {
      ids.push_back(m.pair_id);
      second.PushBack(m.basis == MeasurementBasis::kChshB1);
      outcomes.PushBack(m.outcome);
    }
    if (!SendTestOutcomes(key, ids, second, outcomes)) return;
  }
  if (s.peer_test.has_value()) HandleTest(key);
}

bool KeyDistribution::SendTestOutcomes(const SessionKey& key, const std::vector<uint64_t>& ids,
                                       const qkd::BitString& second, const qkd::BitString& outcomes) {
  const Session& s = sessions_.at(key);
  v1::KeyDistributionMessage msg;
  v1::KeyDistributionTestOutcomes* t = msg.mutable_test_outcomes();
  PairIdsToProto(ids, t->mutable_pair_id_gaps());
  BitsToProto(second, t->mutable_second_setting());
  BitsToProto(outcomes, t->mutable_outcomes());
  if (absl::Status sent = Send(s.peer, key, std::move(msg)); !sent.ok()) {
    Fail(key, WithContext(sent, absl::StrCat("QKD session ", key.id, " with ", s.peer)), false);
    return false;
  }
  return true;
}

void KeyDistribution::OnTestOutcomes(const std::string& source, const SessionKey& key,
                                     const v1::KeyDistributionTestOutcomes& m) {
  Session* s = FindSession(key, source);
  if (s == nullptr) return;
  if (s->options.protocol != QkdProtocol::kE91 || s->peer_test.has_value() || s->post.has_value()) {
    ++stats_.stray_messages;
    return;
  }
  TestOutcomes t;
  absl::Status valid = absl::OkStatus();
  absl::StatusOr<std::vector<uint64_t>> ids = PairIdsFromProto(m.pair_id_gaps(), "CHSH test pair ids");
  absl::StatusOr<qkd::BitString> second = BitsFromProto(m.second_setting(), "CHSH test settings");
  absl::StatusOr<qkd::BitString> outcomes = BitsFromProto(m.outcomes(), "CHSH test outcomes");
  if (!ids.ok()) valid = ids.status();
  if (valid.ok() && !second.ok()) valid = second.status();
  if (valid.ok() && !outcomes.ok()) valid = outcomes.status();
  if (valid.ok() && (second->size() != ids->size() || outcomes->size() != ids->size())) {
    valid = absl::InvalidArgumentError(absl::StrFormat("%d pair ids with %d settings and %d outcomes", ids->size(),
                                                       second->size(), outcomes->size()));
  }
  if (!valid.ok()) {
    Fail(key,
         absl::InvalidArgumentError(absl::StrCat("QKD session ", key.id, ": malformed CHSH test outcomes from ",
                                                 source, ": ", valid.message())),
         true);
    return;
  }
  s->peer_test = TestOutcomes{*std::move(ids), *std::move(second), *std::move(outcomes)};
  if (s->stage == Stage::kTesting) HandleTest(key);
}

void KeyDistribution::HandleTest(const SessionKey& key) {
  Session& s = sessions_.at(key);
  const TestOutcomes& t = *s.peer_test;
  absl::flat_hash_map<uint64_t, const Measured*> own;
  own.reserve(s.measured.size());
  for (const Measured& m : s.measured) own[m.pair_id] = &m;
  // a in {Z, X} (head), b in {B0, B1} (tail, PHI+ frame).
  ChshTally tally;
  std::vector<uint64_t> reply_ids;
  qkd::BitString reply_second, reply_outcomes;
  for (size_t i = 0; i < t.pair_ids.size(); ++i) {
    auto it = own.find(t.pair_ids[i]);
    if (it == own.end()) continue;
    const Measured& m = *it->second;
    int a = 0, b = 0;
    bool a_out = false, b_out = false;
    if (s.initiator) {
      if (!IsKeyBasis(m.basis)) continue;
      a = m.basis == MeasurementBasis::kX;
      a_out = m.outcome;
      b = t.second_setting.Get(i);
      b_out = t.outcomes.Get(i);
      reply_ids.push_back(m.pair_id);
      reply_second.PushBack(a);
      reply_outcomes.PushBack(a_out);
    } else {
      if (!IsTestBasis(m.basis)) continue;
      a = t.second_setting.Get(i);
      a_out = t.outcomes.Get(i);
      b = m.basis == MeasurementBasis::kChshB1;
      b_out = m.outcome;
    }
    tally.Add(a, b, a_out, b_out);
  }
  if (s.initiator) {
    if (!SendTestOutcomes(key, reply_ids, reply_second, reply_outcomes)) return;
  }
  // Both ends now hold the same joint outcomes and decide alike.
  if (!tally.complete()) {
    Fail(key,
         absl::FailedPreconditionError(absl::StrFormat(
             "QKD aborted: E91 session %d has too few CHSH test pairs to estimate S (Z-B0 %d, Z-B1 %d, X-B0 %d, "
             "X-B1 %d); measure more pairs",
             key.id, tally.count(0, 0), tally.count(0, 1), tally.count(1, 0), tally.count(1, 1))),
         false);
    return;
  }
  const ChshTally::Value chsh = tally.Estimate();
  s.chsh = std::pair{chsh.s, chsh.stderr_s};
  EmitProgress(s, kChsh);
  if (!(chsh.s >= s.options.e91_min_chsh)) {
    Fail(key,
         absl::AbortedError(absl::StrFormat(
             "QKD aborted: E91 CHSH value S = %.3f +- %.3f from %d test pairs is below the minimum %.3f (a local "
             "hidden-variable model reaches 2, ideal pairs 2.828): the pairs are too noisy or eavesdropped",
             chsh.s, chsh.stderr_s, tally.pairs(), s.options.e91_min_chsh)),
         false);
    return;
  }
  std::vector<uint64_t> excluded = s.initiator ? t.pair_ids : std::vector<uint64_t>{};
  StartPostProcessing(key, excluded);
}

}  // namespace qnet::keydist
