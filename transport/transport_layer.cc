#include "transport/transport_layer.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qnet::transport {
namespace {

using quantum::BellState;

// Datagram payloads, one line of space-separated fields:
//   source -> destination:
//     BEGIN <transfer> <timeout_ns>
//     BITS <transfer> <head> <tail> <circuit> <sequence> <bsm 0..3>
//     DISCARD <transfer> <head> <tail> <circuit> <sequence>
//     ABORT <transfer> <status code> <message...>
//   destination -> source:
//     ACK <transfer>
//     REFUSE <transfer> <status code> <message...>
// Node names never contain spaces (the network file's names).

std::string PairFields(const network::EndToEndId& id) {
  return absl::StrCat(id.head, " ", id.tail, " ", id.circuit, " ", id.sequence);
}

std::string StatusFields(const absl::Status& s) {
  return absl::StrCat(static_cast<int>(s.code()), " ", std::string(s.message()));
}

int64_t ToNs(Duration d) { return std::chrono::duration_cast<Duration>(d).count(); }

}  // namespace

BellState TeleportCorrection(BellState measured, BellState pair_frame) {
  // Found (data, a) in B(m) = (X^mx Z^mz (x) I)|PHI+> leaves b in
  // Z^mz X^mx |psi> for a PHI+ pair; a pair B(p) = (X^px Z^pz (x) I)|PHI+> =
  // (I (x) Z^pz X^px)|PHI+> adds Z^pz X^px on b. Paulis commute up to a
  // sign, so b holds X^(mx^px) Z^(mz^pz)|psi> up to a phase, and the
  // correction X^x Z^z with the XORed bits undoes it.
  return quantum::Compose(measured, pair_frame);
}

absl::StatusOr<std::unique_ptr<TransportLayer>> TransportLayer::Build(NodeContext& context,
                                                                      physical::QuantumDevice& device,
                                                                      network::NetworkLayer& network,
                                                                      TransportLayerOptions options) {
  if (options.max_active_transfers < 1) {
    return absl::InvalidArgumentError("the transport layer needs max_active_transfers >= 1");
  }
  std::unique_ptr<TransportLayer> layer(new TransportLayer(context, device, network, options));
  TransportLayer* self = layer.get();
  absl::Status s = network.RegisterReceiver(
      options.purpose_id, [self](const network::NetworkEvent& event) { self->OnNetworkEventAsDestination(event); });
  if (!s.ok()) {
    return absl::AlreadyExistsError(absl::StrCat("the transport layer cannot receive pairs on purpose id ",
                                                 options.purpose_id, ": ", s.message()));
  }
  s = network.RegisterDatagramReceiver(options.purpose_id, [self](const std::string& source,
                                                                 const std::string& payload) {
    self->OnDatagram(source, payload);
  });
  if (!s.ok()) {
    (void)network.UnregisterReceiver(options.purpose_id);
    return absl::AlreadyExistsError(absl::StrCat("the transport layer cannot receive datagrams on purpose id ",
                                                 options.purpose_id, ": ", s.message()));
  }
  return layer;
}

TransportLayer::TransportLayer(NodeContext& context, physical::QuantumDevice& device, network::NetworkLayer& network,
                               TransportLayerOptions options)
    : context_(context), device_(device), network_(network), options_(std::move(options)) {
  // A restarted node numbers its transfers from its clock, so a destination
  // never mistakes a new transfer for one of the previous incarnation's.
  const int64_t now_us = std::max<int64_t>(0, context.Now().time_since_epoch().count() / 1000);
  next_id_ = (static_cast<uint64_t>(now_us) << 16) + 1;
}

TransportLayer::~TransportLayer() {
  lifetime_.End();
  for (auto& [id, t] : outgoing_) {
    if (t.deadline != kNoTimer) context_.CancelTimer(t.deadline);
    if (t.request != 0) (void)network_.Cancel(t.request);
    FreeSlot(t.data_slot);
    FreeSlot(t.pair_slot);
  }
  for (auto& [key, in] : incoming_) {
    if (in.deadline != kNoTimer) context_.CancelTimer(in.deadline);
  }
  for (auto& [key, pair] : held_pairs_) FreeSlot(pair.slot);
  (void)network_.UnregisterReceiver(options_.purpose_id);
  (void)network_.UnregisterDatagramReceiver(options_.purpose_id);
}

int TransportLayer::held_slots() const {
  int n = 0;
  for (const auto& [id, t] : outgoing_) n += (t.data_slot >= 0 ? 1 : 0) + (t.pair_slot >= 0 ? 1 : 0);
  for (const auto& [key, pair] : held_pairs_) n += pair.slot >= 0 ? 1 : 0;
  return n;
}

absl::Status TransportLayer::RegisterReceiver(ReceiveHandler handler) {
  if (!handler) return absl::InvalidArgumentError("a transport receiver needs a handler");
  if (receiver_.has_value()) {
    return absl::AlreadyExistsError(absl::StrCat("node ", Where(), " already has a transport receiver"));
  }
  receiver_ = std::move(handler);
  return absl::OkStatus();
}

absl::Status TransportLayer::UnregisterReceiver() {
  if (!receiver_.has_value()) {
    return absl::NotFoundError(absl::StrCat("node ", Where(), " has no transport receiver"));
  }
  receiver_.reset();
  return absl::OkStatus();
}

// ---------------------------------------------------------------- source

absl::StatusOr<TransferId> TransportLayer::Teleport(const std::string& destination, const BlochAngles& state,
                                                    const TeleportOptions& options, TeleportHandler handler) {
  if (destination == Where()) {
    return absl::InvalidArgumentError(absl::StrCat("node ", Where(), " cannot teleport a qubit to itself"));
  }
  if (!std::isfinite(state.theta) || !std::isfinite(state.phi)) {
    return absl::InvalidArgumentError("the state's Bloch angles must be finite numbers");
  }
  if (!(options.min_fidelity >= 0.0 && options.min_fidelity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_fidelity must be in [0, 1], not ", options.min_fidelity));
  }
  if (options.timeout <= Duration(0)) return absl::InvalidArgumentError("a transfer needs a positive timeout");
  if (!handler) return absl::InvalidArgumentError("a transfer needs a handler for its outcome");
  absl::StatusOr<network::Route> route = network_.routes().PathTo(Where(), destination);
  if (!route.ok()) {
    return network::ToStatus(network::NetworkError::kNoRoute,
                             absl::StrCat("cannot teleport to '", destination, "': ", route.status().message()));
  }
  const TransferId id = next_id_++;
  Outgoing& t = outgoing_[id];
  t.id = id;
  t.destination = destination;
  t.state = state;
  t.options = options;
  t.handler = std::move(handler);
  t.report.id = id;
  t.report.destination = destination;
  t.deadline_at = context_.Now() + options.timeout;
  t.deadline = context_.StartTimer(options.timeout, lifetime_.Guard([this, id] {
    Outgoing* o = FindOutgoing(id);
    if (o == nullptr) return;
    o->deadline = kNoTimer;
    const double seconds = std::chrono::duration<double>(o->options.timeout).count();
    FailOutgoing(id,
                 absl::DeadlineExceededError(absl::StrCat("TIMEOUT: transfer ", id, " to ", o->destination,
                                                          " was not done within ", seconds, " s")),
                 true);
  }));
  queue_.push_back(id);
  Post([this] { StartQueued(); });
  return id;
}

TransportLayer::Outgoing* TransportLayer::FindOutgoing(TransferId id) {
  auto it = outgoing_.find(id);
  return it == outgoing_.end() ? nullptr : &it->second;
}

void TransportLayer::StartQueued() {
  // Transfers that hold memory here (a data qubit, a circuit, a pair);
  // those waiting for their ACK hold none.
  int active = 0;
  for (const auto& [id, t] : outgoing_) {
    active += t.phase != Phase::kQueued && t.phase != Phase::kWaitingAck ? 1 : 0;
  }
  while (active < options_.max_active_transfers && !queue_.empty()) {
    const TransferId id = queue_.front();
    queue_.pop_front();
    Outgoing* t = FindOutgoing(id);
    if (t == nullptr) continue;
    ++active;
    Prepare(*t);
  }
}

void TransportLayer::Prepare(Outgoing& t) {
  t.phase = Phase::kPreparing;
  const TransferId id = t.id;
  absl::StatusOr<int> slot = device_.Allocate();
  if (!slot.ok()) {
    FailOutgoing(id,
                 absl::ResourceExhaustedError(absl::StrCat("NO_RESOURCES: node ", Where(),
                                                           " has no free memory qubit for the data qubit: ",
                                                           slot.status().message())),
                 false);
    return;
  }
  t.data_slot = *slot;
  // BEGIN goes first: it travels the route ahead of the circuit set-up, so
  // the destination knows the transfer before its pair arrives.
  absl::Status sent = network_.SendDatagram(
      t.destination, options_.purpose_id, absl::StrCat("BEGIN ", id, " ", ToNs(t.options.timeout)));
  if (!sent.ok()) {
    FailOutgoing(id, sent, false);
    return;
  }
  auto after_rz = lifetime_.Guard([this, id](absl::Status s) {
    Outgoing* o = FindOutgoing(id);
    if (o == nullptr) return;
    if (!s.ok()) {
      FailOutgoing(id, absl::InternalError(absl::StrCat("DEVICE_ERROR: preparing the data qubit: ", s.message())),
                   true);
      return;
    }
    RequestPair(*o);
  });
  auto after_ry = lifetime_.Guard([this, id, after_rz](absl::Status s) {
    Outgoing* o = FindOutgoing(id);
    if (o == nullptr) return;
    if (!s.ok()) {
      FailOutgoing(id, absl::InternalError(absl::StrCat("DEVICE_ERROR: preparing the data qubit: ", s.message())),
                   true);
      return;
    }
    device_.ApplyGate(o->data_slot, physical::Gate::Rz(o->state.phi), after_rz);
  });
  device_.ApplyGate(t.data_slot, physical::Gate::Ry(t.state.theta), after_ry);
}

void TransportLayer::RequestPair(Outgoing& t) {
  t.phase = Phase::kWaitingPair;
  const TransferId id = t.id;
  network::EndToEndRequest r;
  r.remote_node = t.destination;
  r.number = 1;
  r.type = link::RequestType::kKeep;
  r.min_fidelity = t.options.min_fidelity;
  r.max_time = std::max(Duration(1), t.deadline_at - context_.Now());
  r.purpose_id = options_.purpose_id;
  absl::StatusOr<network::RequestId> request =
      network_.Create(r, lifetime_.Guard([this, id](const network::NetworkEvent& event) {
        OnNetworkEventAsSource(id, event);
      }));
  if (!request.ok()) {
    FailOutgoing(id, request.status(), true);
    return;
  }
  t.request = *request;
}

void TransportLayer::OnNetworkEventAsSource(TransferId id, const network::NetworkEvent& event) {
  Outgoing* t = FindOutgoing(id);
  if (const auto* p = std::get_if<network::PairDelivered>(&event)) {
    if (t == nullptr || t->request != p->request_id || t->phase != Phase::kWaitingPair) {
      int slot = p->slot;
      FreeSlot(slot);  // the transfer ended meanwhile
      return;
    }
    if (p->fidelity_estimate < t->options.min_fidelity) {
      int slot = p->slot;
      FreeSlot(slot);
      ++t->report.pairs_discarded;
      ++stats_.pairs_discarded;
      SendMessage(t->destination, absl::StrCat("DISCARD ", id, " ", PairFields(p->id)));
      return;  // another is asked for once this request completes
    }
    t->pair_slot = p->slot;
    t->request = 0;  // the request completes on its own; its end is no news
    t->report.pair = p->id;
    t->report.pair_frame = p->bell_state;
    t->report.pair_fidelity_estimate = p->fidelity_estimate;
    t->phase = Phase::kMeasuring;
    device_.BellMeasure(t->data_slot, t->pair_slot, lifetime_.Guard([this, id](absl::StatusOr<BellState> outcome) {
      OnBellMeasured(id, outcome);
    }));
    return;
  }
  if (t == nullptr) return;
  if (const auto* c = std::get_if<network::RequestCompleted>(&event)) {
    if (t->request == c->request_id && t->phase == Phase::kWaitingPair) {
      t->request = 0;
      RequestPair(*t);  // the pair was discarded
    }
    return;
  }
  if (const auto* f = std::get_if<network::RequestFailed>(&event)) {
    if (t->request != f->request_id) return;
    t->request = 0;
    FailOutgoing(id,
                 network::ToStatus(f->error, absl::StrCat("transfer ", id, " to ", t->destination,
                                                          ": no end-to-end pair: ", f->message)),
                 true);
  }
}

void TransportLayer::OnBellMeasured(TransferId id, absl::StatusOr<BellState> outcome) {
  Outgoing* t = FindOutgoing(id);
  if (t == nullptr || t->phase != Phase::kMeasuring) return;
  if (!outcome.ok()) {
    FailOutgoing(id,
                 absl::InternalError(absl::StrCat("DEVICE_ERROR: Bell-state measurement for transfer ", id, ": ",
                                                  outcome.status().message())),
                 true);
    return;
  }
  FreeSlot(t->data_slot);
  FreeSlot(t->pair_slot);
  t->report.measured = *outcome;
  t->phase = Phase::kWaitingAck;
  SendMessage(t->destination, absl::StrCat("BITS ", id, " ", PairFields(t->report.pair), " ",
                                           static_cast<int>(*outcome)));
  // The memory is free again: the next queued transfer can start.
  StartQueued();
}

void TransportLayer::FinishOutgoing(TransferId id) {
  auto it = outgoing_.find(id);
  if (it == outgoing_.end() || it->second.phase != Phase::kWaitingAck) return;
  Outgoing t = std::move(it->second);
  outgoing_.erase(it);
  if (t.deadline != kNoTimer) context_.CancelTimer(t.deadline);
  ++stats_.sent;
  t.handler(id, t.report);
  StartQueued();
}

void TransportLayer::FailOutgoing(TransferId id, absl::Status error, bool tell_destination) {
  auto it = outgoing_.find(id);
  if (it == outgoing_.end()) return;
  Outgoing t = std::move(it->second);
  outgoing_.erase(it);
  if (t.deadline != kNoTimer) context_.CancelTimer(t.deadline);
  if (t.request != 0) (void)network_.Cancel(t.request);
  FreeSlot(t.data_slot);
  FreeSlot(t.pair_slot);
  queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
  if (tell_destination) SendMessage(t.destination, absl::StrCat("ABORT ", id, " ", StatusFields(error)));
  ++stats_.failed;
  // Never inside a call to the layer: Prepare can fail inside StartQueued.
  Post([handler = std::move(t.handler), id, error] { handler(id, error); });
  Post([this] { StartQueued(); });
}

// ---------------------------------------------------------------- destination

void TransportLayer::OnNetworkEventAsDestination(const network::NetworkEvent& event) {
  const auto* p = std::get_if<network::PairDelivered>(&event);
  if (p == nullptr) return;  // requests' ends are the source's business; it tells us
  const std::string key = p->id.ToString();
  bool expected = false;
  for (const auto& [k, in] : incoming_) expected = expected || k.source == p->remote_node;
  if (!expected || p->type != link::RequestType::kKeep || p->slot < 0) {
    int slot = p->slot;
    FreeSlot(slot);  // no transfer from that node is open here (it ended or never began)
    return;
  }
  HeldPair& held = held_pairs_[key];
  held.source = p->remote_node;
  held.slot = p->slot;
  held.id = p->id;
  held.frame = p->bell_state;
  held.fidelity_estimate = p->fidelity_estimate;
  auto early = early_bits_.find(key);
  if (early != early_bits_.end()) {
    Bits bits = early->second;
    early_bits_.erase(early);
    if (bits.discard) {
      FreeHeldPair(key);
    } else {
      Correct(key, bits);
    }
  }
}

void TransportLayer::OnDatagram(const std::string& source, const std::string& payload) {
  std::vector<std::string> f = absl::StrSplit(payload, absl::MaxSplits(' ', 3));
  TransferId id = 0;
  if (f.size() < 2 || !absl::SimpleAtoi(f[1], &id)) return;  // not ours to parse
  const std::string& verb = f[0];
  if (verb == "BEGIN" && f.size() == 3) {
    int64_t ns = 0;
    if (absl::SimpleAtoi(f[2], &ns)) OnBegin(source, id, Duration(ns));
    return;
  }
  if (verb == "ACK") {
    Outgoing* t = FindOutgoing(id);
    if (t != nullptr && t->destination == source) FinishOutgoing(id);
    return;
  }
  if (verb == "REFUSE" || verb == "ABORT") {
    int code = 0;
    if (f.size() < 3 || !absl::SimpleAtoi(f[2], &code)) return;
    const std::string message = f.size() == 4 ? f[3] : "";
    absl::Status error(static_cast<absl::StatusCode>(code),
                       absl::StrCat(message, " (reported by ", source, ")"));
    if (verb == "REFUSE") {
      Outgoing* t = FindOutgoing(id);
      if (t != nullptr && t->destination == source) FailOutgoing(id, error, false);
    } else {
      FailIncoming({source, id}, error);
    }
    return;
  }
  // BITS and DISCARD name the pair: <head> <tail> <circuit> <sequence> [bsm].
  if (verb != "BITS" && verb != "DISCARD") return;
  std::vector<std::string> fields = absl::StrSplit(payload, ' ');
  network::EndToEndId pair;
  if (fields.size() < 6) return;
  pair.head = fields[2];
  pair.tail = fields[3];
  if (!absl::SimpleAtoi(fields[4], &pair.circuit) || !absl::SimpleAtoi(fields[5], &pair.sequence)) return;
  if (verb == "DISCARD") {
    const std::string key = pair.ToString();
    if (held_pairs_.contains(key)) {
      FreeHeldPair(key);
    } else if (incoming_.contains(IncomingKey{source, id})) {
      early_bits_[key] = Bits{source, id, true, BellState::kPhiPlus};
    }
    return;
  }
  int bsm = 0;
  if (fields.size() != 7 || !absl::SimpleAtoi(fields[6], &bsm) || bsm < 0 || bsm > 3) return;
  OnBits(source, id, pair, static_cast<BellState>(bsm));
}

void TransportLayer::OnBegin(const std::string& source, TransferId id, Duration timeout) {
  const IncomingKey key{source, id};
  if (incoming_.contains(key)) return;
  if (!receiver_.has_value()) {
    SendMessage(source, absl::StrCat("REFUSE ", id, " ", static_cast<int>(absl::StatusCode::kNotFound),
                                     " NO_RECEIVER: node ", Where(), " has no transport receiver"));
    ++stats_.failed;
    return;
  }
  Incoming& in = incoming_[key];
  // The source's own deadline fires first (it started earlier); this one
  // ends the transfer here when the source can no longer tell us (it died).
  in.deadline = context_.StartTimer(timeout, lifetime_.Guard([this, key] {
    auto it = incoming_.find(key);
    if (it == incoming_.end()) return;
    it->second.deadline = kNoTimer;
    FailIncoming(key, absl::DeadlineExceededError(absl::StrCat("TIMEOUT: transfer ", key.id, " from ", key.source,
                                                               " did not complete at ", Where(),
                                                               " within its timeout")));
  }));
}

void TransportLayer::OnBits(const std::string& source, TransferId id, const network::EndToEndId& pair,
                            BellState measured) {
  const IncomingKey key{source, id};
  const std::string pair_key = pair.ToString();
  if (!incoming_.contains(key)) {
    FreeHeldPair(pair_key);  // the transfer ended here (timeout) before its bits came
    return;
  }
  const Bits bits{source, id, false, measured};
  if (held_pairs_.contains(pair_key)) {
    Correct(pair_key, bits);
  } else {
    early_bits_[pair_key] = bits;
  }
}

void TransportLayer::Correct(const std::string& pair_key, Bits bits) {
  HeldPair& pair = held_pairs_.at(pair_key);
  auto in = incoming_.find(IncomingKey{bits.source, bits.transfer});
  if (in == incoming_.end() || in->second.correcting) {
    FreeHeldPair(pair_key);
    return;
  }
  in->second.correcting = true;
  const BellState correction = TeleportCorrection(bits.measured, pair.frame);
  device_.ApplyPauli(pair.slot, quantum::XBit(correction), quantum::ZBit(correction),
                     lifetime_.Guard([this, pair_key, bits](absl::Status s) {
                       auto it = held_pairs_.find(pair_key);
                       if (it == held_pairs_.end()) return;  // the transfer failed meanwhile
                       const IncomingKey key{bits.source, bits.transfer};
                       if (!s.ok()) {
                         FreeHeldPair(pair_key);
                         const absl::Status error = absl::InternalError(absl::StrCat(
                             "DEVICE_ERROR: correcting the qubit of transfer ", bits.transfer, ": ", s.message()));
                         SendMessage(bits.source, absl::StrCat("REFUSE ", bits.transfer, " ", StatusFields(error)));
                         FailIncoming(key, error);
                         return;
                       }
                       if (!receiver_.has_value()) {
                         FreeHeldPair(pair_key);
                         const absl::Status error = absl::NotFoundError(
                             absl::StrCat("NO_RECEIVER: node ", Where(), " has no transport receiver"));
                         SendMessage(bits.source, absl::StrCat("REFUSE ", bits.transfer, " ", StatusFields(error)));
                         FailIncoming(key, error);
                         return;
                       }
                       QubitReceived received;
                       received.source = bits.source;
                       received.id = bits.transfer;
                       received.slot = it->second.slot;
                       received.pair = it->second.id;
                       received.pair_fidelity_estimate = it->second.fidelity_estimate;
                       held_pairs_.erase(it);  // the receiver owns the slot now
                       SendMessage(bits.source, absl::StrCat("ACK ", bits.transfer));
                       ++stats_.received;
                       EndIncoming(key);
                       ReceiveHandler handler = *receiver_;  // may unregister itself
                       handler(received);
                     }));
}

void TransportLayer::FailIncoming(const IncomingKey& key, absl::Status error) {
  if (!incoming_.contains(key)) return;
  // Its pair (if it came) is the one its bits would have named; bits that
  // came early name it too.
  std::vector<std::string> pairs;
  for (const auto& [pair_key, bits] : early_bits_) {
    if (bits.source == key.source && bits.transfer == key.id) pairs.push_back(pair_key);
  }
  for (const std::string& pair_key : pairs) early_bits_.erase(pair_key);
  ++stats_.failed;
  EndIncoming(key);
  if (receiver_.has_value()) {
    ReceiveHandler handler = *receiver_;
    handler(ReceiveFailed{key.source, key.id, std::move(error)});
  }
}

void TransportLayer::EndIncoming(const IncomingKey& key) {
  auto it = incoming_.find(key);
  if (it == incoming_.end()) return;
  if (it->second.deadline != kNoTimer) context_.CancelTimer(it->second.deadline);
  incoming_.erase(it);
  FreeUnclaimedPairsFrom(key.source);
}

void TransportLayer::FreeUnclaimedPairsFrom(const std::string& source) {
  // A pair is not named by a transfer until its bits come; while the source
  // has transfers open here any of them may claim it.
  for (const auto& [key, in] : incoming_) {
    if (key.source == source) return;
  }
  std::vector<std::string> unclaimed;
  for (const auto& [pair_key, pair] : held_pairs_) {
    if (pair.source == source) unclaimed.push_back(pair_key);
  }
  for (const std::string& pair_key : unclaimed) FreeHeldPair(pair_key);
  std::vector<std::string> stale;
  for (const auto& [pair_key, bits] : early_bits_) {
    if (bits.source == source) stale.push_back(pair_key);
  }
  for (const std::string& pair_key : stale) early_bits_.erase(pair_key);
}

void TransportLayer::FreeHeldPair(const std::string& pair_key) {
  auto it = held_pairs_.find(pair_key);
  if (it == held_pairs_.end()) return;
  FreeSlot(it->second.slot);
  held_pairs_.erase(it);
}

// ---------------------------------------------------------------- plumbing

void TransportLayer::SendMessage(const std::string& to, std::string payload) {
  // Best effort: without a route the far end learns by its own deadline.
  (void)network_.SendDatagram(to, options_.purpose_id, std::move(payload));
}

void TransportLayer::Post(std::function<void()> fn) {
  context_.StartTimer(Duration(0), lifetime_.Guard(std::move(fn)));
}

void TransportLayer::FreeSlot(int& slot) {
  if (slot >= 0 && device_.IsAllocated(slot)) (void)device_.Free(slot);
  slot = -1;
}

}  // namespace qnet::transport
