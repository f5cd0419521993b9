// The trusted-node relay (relay.h): relay sessions at the origin, the
// relays between and the destination, over BBM92 hop sessions.
#include "keydist/relay.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "keydist/qkd_wire.h"
#include "keydist/session_internals.h"

namespace qnet::keydist {
namespace {

// The first `bits` bits of a XOR b (both at least that long).
qkd::BitString XorPrefix(const qkd::BitString& a, const qkd::BitString& b, size_t bits) {
  std::vector<uint64_t> words = a.Slice(0, bits).words();
  const qkd::BitString other = b.Slice(0, bits);
  for (size_t i = 0; i < words.size(); ++i) words[i] ^= other.words()[i];
  return qkd::BitString::FromWords(std::move(words), bits);
}

// A public id for a relayed key from public data only (the hop key ids).
std::string RelayKeyId(const std::string& origin, uint64_t relay_id, const std::vector<std::string>& hop_ids,
                       uint64_t bits) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix_byte = [&h](unsigned char c) {
    h ^= c;
    h *= 0x100000001b3ULL;
  };
  auto mix = [&](std::string_view s) {
    for (char c : s) mix_byte(static_cast<unsigned char>(c));
    mix_byte(0);
  };
  mix(origin);
  mix(absl::StrCat(relay_id, ":", bits));
  for (const std::string& id : hop_ids) mix(id);
  h ^= h >> 31;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 29;
  return absl::StrFormat("qr-%016x", h);
}

}  // namespace

TrustedRelays::TrustedRelays(KeyDistribution& kd) : kd_(kd), context_(kd.context_) {}

TrustedRelays::~TrustedRelays() {
  for (auto& [key, r] : relays_) {
    if (r.deadline != kNoTimer) context_.CancelTimer(r.deadline);
  }
}

absl::StatusOr<SessionId> TrustedRelays::Start(const std::string& peer, const QkdSessionOptions& options,
                                               ProgressHandler progress, DoneHandler done) {
  absl::StatusOr<network::Route> route = kd_.network_.routes().PathTo(kd_.Where(), peer);
  if (!route.ok()) {
    return network::ToStatus(network::NetworkError::kNoRoute,
                             absl::StrCat("no relay QKD session with ", peer, ": ", route.status().message()));
  }
  const SessionKey key{kd_.Where(), kd_.next_id_++};
  QkdSessionOptions hop = options;
  hop.protocol = QkdProtocol::kBbm92;
  // The other nodes learn their part first, so that hop offers find them ready.
  for (size_t i = 1; i < route->path.size(); ++i) {
    v1::KeyDistributionMessage m;
    v1::KeyDistributionRelayStart* start = m.mutable_relay_start();
    for (const std::string& n : route->path) start->add_path(n);
    start->set_pairs(hop.pairs);
    start->set_min_fidelity(hop.min_fidelity);
    start->set_timeout_ns(hop.timeout.count());
    PostProcessingToWire(hop.post_processing, start->mutable_post_processing());
    if (absl::Status sent = kd_.Send(route->path[i], key, std::move(m)); !sent.ok()) {
      for (size_t j = 1; j < i; ++j) {
        v1::KeyDistributionMessage abort;
        abort.mutable_relay_abort()->set_code(static_cast<int32_t>(absl::StatusCode::kCancelled));
        abort.mutable_relay_abort()->set_message(absl::StrCat("relay session ", key.id, " could not start"));
        (void)kd_.Send(route->path[j], key, std::move(abort));
      }
      return sent;
    }
  }
  Relay& r = Ensure(key, route->path, 0, options.timeout);
  r.instructed = true;
  r.hop_options = hop;
  r.progress = std::move(progress);
  if (absl::Status started = StartRightHop(key); !started.ok()) {
    Fail(key, started, true);  // no handler yet: the caller gets the error
    return started;
  }
  relays_.at(key).done_handler = std::move(done);
  return key.id;
}

bool TrustedRelays::Cancel(const SessionKey& key) {
  auto r = relays_.find(key);
  if (r == relays_.end() || !r->second.origin()) return false;
  Fail(key,
       absl::CancelledError(absl::StrCat("CANCELLED: relay QKD session ", key.id, " was cancelled at ", kd_.Where())),
       true);
  return true;
}

void TrustedRelays::OnMessage(const std::string& source, const SessionKey& key, const v1::KeyDistributionMessage& m) {
  switch (m.body_case()) {
    case v1::KeyDistributionMessage::kRelayStart: return OnStart(source, key, m.relay_start());
    case v1::KeyDistributionMessage::kRelayAnnouncement: return OnAnnouncement(source, key, m.relay_announcement());
    case v1::KeyDistributionMessage::kRelayDone: return OnDone(source, key, m.relay_done());
    case v1::KeyDistributionMessage::kRelayAbort: return OnAbort(source, key, m.relay_abort());
    default: return;  // the session core's
  }
}

void TrustedRelays::Join(const SessionKey& key, std::vector<std::string> path, size_t index, Duration timeout) {
  Ensure(key, std::move(path), index, timeout);
}

const std::vector<std::string>* TrustedRelays::PathOf(const SessionKey& key) const {
  auto it = relays_.find(key);
  return it == relays_.end() ? nullptr : &it->second.path;
}

void TrustedRelays::OnHopProgress(const SessionKey& key, const QkdProgress& progress) {
  auto it = relays_.find(key);
  if (it == relays_.end() || !it->second.origin() || !it->second.progress) return;
  kd_.Post([handler = it->second.progress, id = key.id, progress] { handler(id, progress); });
}

TrustedRelays::Relay& TrustedRelays::Ensure(const SessionKey& key, std::vector<std::string> path, size_t index,
                                            Duration timeout) {
  auto [it, inserted] = relays_.try_emplace(key);
  Relay& r = it->second;
  if (!inserted) return r;
  r.key = key;
  r.path = std::move(path);
  r.index = index;
  r.started = context_.Now();
  r.deadline_at = r.started + timeout;
  r.deadline = kd_.StartDeadline(timeout, [this, key] { OnDeadline(key); });
  return r;
}

void TrustedRelays::OnDeadline(const SessionKey& key) {
  auto found = relays_.find(key);
  if (found == relays_.end()) return;
  found->second.deadline = kNoTimer;
  // A hop still running here says best what is missing (e.g. a peer that
  // never answered): it fails the relay session with its own timeout.
  kd_.TimeOutHopOf(key);
  found = relays_.find(key);
  if (found == relays_.end()) return;
  const Relay& relay = found->second;
  std::vector<std::string> missing;
  if (!relay.origin() && !relay.left.has_value()) missing.push_back("the left hop's key");
  if (!relay.destination() && !relay.right.has_value()) missing.push_back("the right hop's key");
  if (relay.destination() && relay.announcements.size() + 2 < relay.path.size()) {
    missing.push_back("relay announcements");
  }
  if (relay.origin() && !relay.done.has_value()) missing.push_back("the destination's confirmation");
  Fail(key,
       absl::DeadlineExceededError(absl::StrCat("TIMEOUT: relay QKD session ", key.id, " from ", key.initiator, " to ",
                                                relay.path.back(), " did not finish at ", kd_.Where(),
                                                " within its timeout (waiting for ",
                                                missing.empty() ? "nothing" : absl::StrJoin(missing, ", "), ")")),
       true);
}

absl::Status TrustedRelays::StartRightHop(const SessionKey& key) {
  Relay& r = relays_.at(key);
  QkdSessionOptions hop = r.hop_options;
  hop.timeout = std::max(Duration(1), r.deadline_at - context_.Now());
  absl::StatusOr<SessionId> id = kd_.StartHopOrSession(r.path[r.index + 1], hop, nullptr, nullptr, HopOf{key, false});
  if (!id.ok()) return id.status();
  relays_.at(key).right_session = SessionKey{kd_.Where(), *id};
  return absl::OkStatus();
}

void TrustedRelays::OnStart(const std::string& source, const SessionKey& key, const v1::KeyDistributionRelayStart& m) {
  std::vector<std::string> path(m.path().begin(), m.path().end());
  size_t index = 0;
  while (index < path.size() && path[index] != kd_.Where()) ++index;
  if (key.initiator != source || path.size() < 2 || path.front() != source || index == 0 || index >= path.size() ||
      m.timeout_ns() <= 0) {
    ++kd_.stats_.stray_messages;
    return;
  }
  Relay& r = Ensure(key, path, index, Duration(m.timeout_ns()));
  if (r.instructed || r.path != path) {
    ++kd_.stats_.stray_messages;
    return;
  }
  r.instructed = true;
  r.hop_options.protocol = QkdProtocol::kBbm92;
  r.hop_options.pairs = m.pairs();
  r.hop_options.min_fidelity = m.min_fidelity();
  r.hop_options.timeout = Duration(m.timeout_ns());
  r.hop_options.post_processing = PostProcessingFromWire(m.post_processing());
  if (absl::Status valid = ValidateSessionOptions(r.hop_options); !valid.ok()) {
    Fail(key, WithContext(valid, absl::StrCat(kd_.Where(), " refuses relay session ", key.id)), true);
    return;
  }
  if (!r.destination()) {
    if (absl::Status started = StartRightHop(key); !started.ok()) {
      Fail(key, WithContext(started, absl::StrCat("relay session ", key.id, " at ", kd_.Where())), true);
      return;
    }
  }
  Advance(key);
}

void TrustedRelays::OnAnnouncement(const std::string& source, const SessionKey& key,
                                   const v1::KeyDistributionRelayAnnouncement& m) {
  auto it = relays_.find(key);
  if (it == relays_.end() || !it->second.destination() || m.index() == 0 || m.index() + 1 >= it->second.path.size() ||
      it->second.path[m.index()] != source || it->second.announcements.contains(m.index())) {
    ++kd_.stats_.stray_messages;
    return;
  }
  absl::StatusOr<qkd::BitString> bits = BitsFromProto(m.xor_bits(), "relay announcement");
  if (!bits.ok()) {
    Fail(key,
         absl::InvalidArgumentError(absl::StrCat("relay session ", key.id, ": a malformed announcement from ", source,
                                                 ": ", bits.status().message())),
         true);
    return;
  }
  it->second.announcements[m.index()] = Announcement{m.left_key_id(), m.right_key_id(), *std::move(bits)};
  Advance(key);
}

void TrustedRelays::OnDone(const std::string& source, const SessionKey& key, const v1::KeyDistributionRelayDone& m) {
  auto it = relays_.find(key);
  if (it == relays_.end() || !it->second.origin() || it->second.path.back() != source || it->second.done.has_value()) {
    ++kd_.stats_.stray_messages;
    return;
  }
  it->second.done = std::pair{m.key_bits(), m.key_id()};
  Advance(key);
}

void TrustedRelays::OnAbort(const std::string& source, const SessionKey& key, const v1::KeyDistributionRelayAbort& m) {
  auto it = relays_.find(key);
  if (it == relays_.end() ||
      std::find(it->second.path.begin(), it->second.path.end(), source) == it->second.path.end()) {
    ++kd_.stats_.stray_messages;
    return;
  }
  // The origin passes it on to the rest of the path.
  Fail(key, StatusFromWire(m.code(), m.message(), source), it->second.origin());
}

void TrustedRelays::OnHopKey(const HopOf& hop, HopKey key) {
  auto it = relays_.find(hop.relay);
  if (it == relays_.end()) return;  // the relay session ended meanwhile
  Relay& r = it->second;
  if (hop.left) {
    r.left = std::move(key);
  } else {
    r.right = std::move(key);
  }
  if (r.origin() && !hop.left && r.progress) {
    QkdProgress p;
    p.stage = "relaying";
    p.raw_pairs = r.right->report.raw_detections;
    p.sifted_bits = r.right->report.sifted_bits;
    p.qber = r.right->report.qber.overall.rate();
    p.reconciled_bits = r.right->report.reconciled_bits;
    p.final_key_bits = r.right->report.final_key_bits;
    kd_.Post([progress = r.progress, id = r.key.id, p] { progress(id, p); });
  }
  Advance(hop.relay);
}

void TrustedRelays::Advance(const SessionKey& key) {
  auto it = relays_.find(key);
  if (it == relays_.end()) return;
  Relay& r = it->second;
  const size_t n = r.path.size();
  if (r.origin()) {
    if (!r.right.has_value() || !r.done.has_value()) return;
    const auto [bits, key_id] = *r.done;
    if (bits == 0 || bits > r.right->bits.size()) {
      Fail(key,
           absl::InternalError(absl::StrFormat("relay session %d: the destination reports a %d-bit key but the "
                                               "first hop's key has %d bits",
                                               key.id, bits, r.right->bits.size())),
           true);
      return;
    }
    QkdResult result;
    result.protocol = QkdProtocol::kRelay;
    result.peer = r.path.back();
    result.report = r.right->report;
    result.auth_bits_consumed = r.right->auth_bits_consumed;
    result.key = r.right->bits.Slice(0, bits);
    result.key_id = key_id;
    result.simulated_duration = context_.Now() - r.started;
    result.path = r.path;
    result.relay_nodes.assign(r.path.begin() + 1, r.path.end() - 1);
    if (r.progress) {
      QkdProgress p;
      p.stage = "done";
      p.raw_pairs = result.report.raw_detections;
      p.sifted_bits = result.report.sifted_bits;
      p.qber = result.report.qber.overall.rate();
      p.reconciled_bits = result.report.reconciled_bits;
      p.final_key_bits = bits;
      kd_.Post([progress = r.progress, id = key.id, p] { progress(id, p); });
    }
    DoneHandler done = std::move(r.done_handler);
    Erase(key);
    ++kd_.stats_.sessions_succeeded;
    kd_.stats_.key_bits += result.key.size();
    if (done) kd_.Post([done = std::move(done), id = key.id, result = std::move(result)] { done(id, result); });
    return;
  }
  if (r.destination()) {
    if (!r.left.has_value() || !r.instructed || r.announcements.size() + 2 < n) return;
    // The hop key ids must chain: each relay's right hop is the next one's left.
    std::vector<std::string> hop_ids;
    for (size_t i = 1; i + 1 < n; ++i) {
      const Announcement& a = r.announcements.at(i);
      const std::string& next_left = i + 2 < n ? r.announcements.at(i + 1).left_key_id : r.left->key_id;
      if (a.right_key_id != next_left) {
        Fail(key,
             absl::DataLossError(absl::StrCat("relay session ", key.id, ": ", r.path[i], " announces a right hop key ",
                                              a.right_key_id, " but the next hop's key is ", next_left)),
             true);
        return;
      }
      hop_ids.push_back(a.left_key_id);
    }
    hop_ids.push_back(r.left->key_id);
    size_t bits = r.left->bits.size();
    for (const auto& [i, a] : r.announcements) bits = std::min(bits, a.bits.size());
    // K_A = K_last ^ (K_0 ^ K_1) ^ (K_1 ^ K_2) ^ ... ^ (K_(n-3) ^ K_last).
    qkd::BitString k = r.left->bits.Slice(0, bits);
    for (const auto& [i, a] : r.announcements) k = XorPrefix(k, a.bits, bits);
    const std::string key_id = RelayKeyId(key.initiator, key.id, hop_ids, bits);
    v1::KeyDistributionMessage done;
    done.mutable_relay_done()->set_key_bits(bits);
    done.mutable_relay_done()->set_key_id(key_id);
    if (absl::Status sent = kd_.Send(key.initiator, key, std::move(done)); !sent.ok()) {
      Fail(key, WithContext(sent, absl::StrCat("relay session ", key.id)), true);
      return;
    }
    QkdResult result;
    result.protocol = QkdProtocol::kRelay;
    result.peer = key.initiator;
    result.report = r.left->report;
    result.auth_bits_consumed = r.left->auth_bits_consumed;
    result.key = std::move(k);
    result.key_id = key_id;
    result.simulated_duration = context_.Now() - r.started;
    result.path = r.path;
    result.relay_nodes.assign(r.path.begin() + 1, r.path.end() - 1);
    Erase(key);
    ++kd_.stats_.sessions_succeeded;
    kd_.stats_.key_bits += result.key.size();
    if (kd_.responder_handler_) {
      kd_.Post([handler = kd_.responder_handler_, key, result = std::move(result)] {
        handler(key.initiator, key.id, result);
      });
    }
    return;
  }
  // A relay: announce K_left ^ K_right to the destination.
  if (!r.left.has_value() || !r.right.has_value()) return;
  const size_t bits = std::min(r.left->bits.size(), r.right->bits.size());
  v1::KeyDistributionMessage m;
  v1::KeyDistributionRelayAnnouncement* a = m.mutable_relay_announcement();
  a->set_index(static_cast<uint32_t>(r.index));
  a->set_left_key_id(r.left->key_id);
  a->set_right_key_id(r.right->key_id);
  BitsToProto(XorPrefix(r.left->bits, r.right->bits, bits), a->mutable_xor_bits());
  if (absl::Status sent = kd_.Send(r.path.back(), key, std::move(m)); !sent.ok()) {
    Fail(key, WithContext(sent, absl::StrCat("relay session ", key.id, " at ", kd_.Where())), true);
    return;
  }
  ++kd_.stats_.relays_served;
  Erase(key);
}

void TrustedRelays::OnNeighbourDown(const std::string& neighbour) {
  std::vector<SessionKey> cut;
  for (const auto& [key, r] : relays_) {
    const bool left = r.index > 0 && r.path[r.index - 1] == neighbour;
    const bool right = r.index + 1 < r.path.size() && r.path[r.index + 1] == neighbour;
    if (left || right) cut.push_back(key);
  }
  for (const SessionKey& key : cut) {
    Fail(key,
         network::ToStatus(network::NetworkError::kPeerDown,
                           absl::StrCat("relay session ", key.id, " of ", key.initiator, ": the link ", kd_.Where(), "-",
                                        neighbour, " on its path went down")),
         true);
  }
}

void TrustedRelays::Fail(const SessionKey& key, absl::Status status, bool tell) {
  auto it = relays_.find(key);
  if (it == relays_.end()) return;
  Relay r = std::move(it->second);
  relays_.erase(it);
  if (r.deadline != kNoTimer) context_.CancelTimer(r.deadline);
  // Its hops here end too (the relay is gone, so they do not come back here).
  kd_.CancelHopsOf(key, absl::CancelledError(absl::StrCat("relay session ", key.id, " ended: ", status.message())));
  if (tell) {
    std::vector<std::string> to;
    if (r.origin()) {
      to.assign(r.path.begin() + 1, r.path.end());
    } else {
      to.push_back(r.path.front());
      if (!r.destination()) to.push_back(r.path.back());
    }
    for (const std::string& node : to) {
      v1::KeyDistributionMessage m;
      m.mutable_relay_abort()->set_code(static_cast<int32_t>(status.code()));
      m.mutable_relay_abort()->set_message(std::string(status.message()));
      (void)kd_.Send(node, key, std::move(m));  // best effort: the others have their deadlines
    }
  }
  if (r.origin() && r.done_handler) {
    ++kd_.stats_.sessions_failed;
    kd_.Post([done = std::move(r.done_handler), id = key.id, status] { done(id, status); });
  } else if (r.destination()) {
    ++kd_.stats_.sessions_failed;
    if (kd_.responder_handler_) {
      kd_.Post([handler = kd_.responder_handler_, key, status] { handler(key.initiator, key.id, status); });
    }
  }
}

void TrustedRelays::Erase(const SessionKey& key) {
  auto it = relays_.find(key);
  if (it == relays_.end()) return;
  if (it->second.deadline != kNoTimer) context_.CancelTimer(it->second.deadline);
  relays_.erase(it);
}

}  // namespace qnet::keydist
