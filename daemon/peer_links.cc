#include "daemon/peer_links.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qnet::daemon {
namespace {

double Seconds(WallClock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

// A peer stream refused before it starts (the caller's certificate does not
// allow it): finishes at once with the refusal.
class RefusedStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// Raw (bytes) so that the stream parses frames itself (PeerStream::Accept).
class PeerLinks::Service final : public v1::Peer::WithRawCallbackMethod_Exchange<v1::Peer::Service> {
 public:
  explicit Service(PeerLinks& links) : links_(links) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Exchange(grpc::CallbackServerContext* context) override {
    PeerLinks* links = &links_;
    std::string certified;
    if (links_.policy_ != nullptr) {
      absl::StatusOr<std::string> peer = links_.policy_->AuthorizePeer(*context);
      if (!peer.ok()) return new RefusedStream(grpc::Status(static_cast<grpc::StatusCode>(peer.status().code()),
                                                            std::string(peer.status().message())));
      certified = *std::move(peer);
    }
    return PeerStream::Accept(context, links_.Events(), [links, certified](PeerStreamPtr stream) {
      links->OnAccepted(std::move(stream), certified);
    });
  }

 private:
  PeerLinks& links_;
};

PeerLinks::PeerLinks(EventLoop& loop, PeerDirectory& directory, const Logger& log, const DaemonTopology& topology,
                     std::shared_ptr<CallCounter> calls, PeerLinkTiming timing)
    : loop_(loop),
      directory_(directory),
      log_(log),
      topology_(topology),
      calls_(std::move(calls)),
      timing_(timing),
      service_(std::make_unique<Service>(*this)) {
  for (const NeighbourLink& link : topology_.neighbours) {
    Neighbour& n = neighbours_[link.neighbour];
    n.state.name = link.neighbour;
    n.state.link = link.link;
    n.state.we_dial = topology_.self < link.neighbour;
    n.state.classical_delay = link.classical_delay();
    n.hold = loop_.ToWall(n.state.classical_delay);
    n.backoff = timing_.min_redial;
    // The bucket outlives streams, so reconnecting does not refill it.
    n.frame_tokens = timing_.max_frames_per_second;
    n.tokens_at = WallClock::now();
  }
}

PeerLinks::~PeerLinks() = default;

grpc::Service* PeerLinks::service() { return service_.get(); }

PeerStreamEvents PeerLinks::Events() {
  PeerLinks* self = this;
  return PeerStreamEvents{
      .poster = loop_.poster(),
      .on_frame = [self](PeerStreamPtr s, v1::PeerFrame f,
                         WallClock::time_point arrived) { self->OnFrame(std::move(s), std::move(f), arrived); },
      .on_closed = [self](PeerStreamPtr s, grpc::Status st) { self->OnClosed(std::move(s), std::move(st)); },
      .calls = calls_,
  };
}

PeerLinks::Neighbour* PeerLinks::Find(const std::string& name) {
  auto it = neighbours_.find(name);
  return it == neighbours_.end() ? nullptr : &it->second;
}

PeerLinks::Neighbour* PeerLinks::FindByStream(const PeerStreamPtr& stream) {
  for (auto& [name, n] : neighbours_) {
    if (n.stream == stream || n.dialing == stream) return &n;
  }
  return nullptr;
}

v1::PeerFrame PeerLinks::MakeHello() const {
  v1::PeerFrame frame;
  v1::Hello* hello = frame.mutable_hello();
  hello->set_node(topology_.self);
  hello->set_network(topology_.network);
  hello->set_protocol_version(kPeerProtocolVersion);
  hello->set_time_scale(loop_.time_scale());
  hello->set_epoch_unix_ns(loop_.epoch_unix_ns());
  return frame;
}

absl::Status PeerLinks::CheckHello(const v1::Hello& hello, bool from_dialer) const {
  if (hello.protocol_version() != kPeerProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat("node '", hello.node(), "' speaks peer protocol version ",
                                                      hello.protocol_version(), ", node '", topology_.self,
                                                      "' speaks ", kPeerProtocolVersion));
  }
  if (hello.network() != topology_.network) {
    return absl::FailedPreconditionError(absl::StrCat("node '", hello.node(), "' belongs to network '",
                                                      hello.network(), "', node '", topology_.self,
                                                      "' to network '", topology_.network, "'"));
  }
  if (topology_.FindNeighbour(hello.node()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("node '", hello.node(), "' is not a neighbour of '",
                                                      topology_.self, "' in network '", topology_.network, "'"));
  }
  if (from_dialer && !(hello.node() < topology_.self)) {
    return absl::FailedPreconditionError(absl::StrCat("node '", hello.node(), "' dialed '", topology_.self,
                                                      "', but the node whose name sorts lower dials"));
  }
  return CheckTimeLine(hello);
}

absl::Status PeerLinks::CheckTimeLine(const v1::Hello& hello) const {
  // Two neighbours on different time lines exchange time stamps (heralds,
  // emission times) that mean different instants: a herald from a station
  // whose clock runs ahead waits in the receiver's future until the far
  // end gives it up as lost, and memory decay is reckoned from the wrong
  // instant. Figures would be wrong without a word, so the link stays down.
  const double scale = loop_.time_scale();
  if (!(std::abs(hello.time_scale() - scale) <= 1e-9 * scale)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node '", hello.node(), "' runs at time scale ", hello.time_scale(), ", node '", topology_.self, "' at ",
        scale, ": every daemon of a network needs the same --time-scale"));
  }
  if (hello.epoch_unix_ns() < 0) {  // no daemon counts from before 1970 (and the difference below must not overflow)
    return absl::FailedPreconditionError(absl::StrCat("node '", hello.node(), "' sent a negative epoch (",
                                                      hello.epoch_unix_ns(), " ns)"));
  }
  // Epochs apart by less than a tenth of the link's classical delay (in
  // simulated time) change no figure beyond what the lag monitor tolerates.
  const NeighbourLink* link = topology_.FindNeighbour(hello.node());
  const double delay_s = ToSeconds(link->classical_delay());
  const double apart_s = std::abs(static_cast<double>(hello.epoch_unix_ns() - loop_.epoch_unix_ns())) * 1e-9;
  if (apart_s * scale > delay_s / 10.0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node '", hello.node(), "' counts simulated time from Unix time ", hello.epoch_unix_ns(), " ns, node '",
        topology_.self, "' from ", loop_.epoch_unix_ns(), " ns: ", absl::StrFormat("%.6g", apart_s * scale),
        " s of simulated time apart, more than a tenth of link ", link->link, "'s classical delay (",
        absl::StrFormat("%.3g", delay_s * 1e6),
        " us); give every daemon of a network the same --epoch-unix-ns (qnetctl up and qnetctl bundle do)"));
  }
  return absl::OkStatus();
}

void PeerLinks::Start() {
  for (auto& [name, n] : neighbours_) {
    if (n.state.we_dial) Dial(n);
  }
}

void PeerLinks::Dial(Neighbour& n) {
  n.redial_timer = kNoTimer;
  if (closed_ || n.stream != nullptr || n.dialing != nullptr) return;
  auto channel = directory_.Channel(n.state.name);
  if (!channel.ok()) {
    std::string error(channel.status().message());
    if (error != n.last_dial_error) QNET_LOG(log_, kDebug, "cannot dial %s yet: %s", n.state.name, error);
    n.last_dial_error = error;
    ScheduleRedial(n);
    return;
  }
  QNET_LOG(log_, kDebug, "dialing %s", n.state.name);
  n.dialing = PeerStream::Dial(*std::move(channel), Events());
  n.dialing->Send(MakeHello());
  PeerStreamPtr stream = n.dialing;
  n.handshake_timer = loop_.StartWallTimer(timing_.handshake_timeout, [this, &n, stream] {
    n.handshake_timer = kNoTimer;
    if (n.dialing == stream) {
      QNET_LOG(log_, kDebug, "no Hello from %s within %.1fs", n.state.name, Seconds(timing_.handshake_timeout));
      stream->Abort(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "handshake timed out"));
    }
  });
}

void PeerLinks::ScheduleRedial(Neighbour& n) {
  if (closed_ || !n.state.we_dial || n.redial_timer != kNoTimer || n.dialing != nullptr || n.stream != nullptr) {
    return;
  }
  n.redial_timer = loop_.StartWallTimer(n.backoff, [this, &n] { Dial(n); });
  n.backoff = std::min(n.backoff * 2, timing_.max_redial);
}

void PeerLinks::OnAccepted(PeerStreamPtr stream, std::string certified_node) {
  if (closed_) {
    stream->Abort(grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat("node '", topology_.self,
                                                                          "' is shutting down")));
    return;
  }
  TimerId timer = loop_.StartWallTimer(timing_.handshake_timeout, [this, stream] {
    auto it = pending_.find(stream);
    if (it == pending_.end()) return;
    pending_.erase(it);
    stream->Abort(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no Hello received"));
  });
  pending_.emplace(std::move(stream), PendingStream{.handshake_timer = timer, .certified_node = std::move(certified_node)});
}

void PeerLinks::OnFrame(PeerStreamPtr stream, v1::PeerFrame frame, WallClock::time_point arrived) {
  if (auto it = pending_.find(stream); it != pending_.end()) {
    // An accepted stream: its first frame must be the dialer's Hello.
    loop_.CancelTimer(it->second.handshake_timer);
    const std::string certified = std::move(it->second.certified_node);
    pending_.erase(it);
    if (!frame.has_hello()) {
      QNET_LOG(log_, kWarn, "rejected peer stream: its first frame is not a Hello");
      stream->Abort(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("the first frame of a peer stream to '", topology_.self,
                                              "' must be a Hello (got frame kind ", frame.kind_case(), ")")));
      return;
    }
    if (!certified.empty() && frame.hello().node() != certified) {
      QNET_LOG(log_, kWarn, "refused a peer stream: node '%s' sent a Hello naming '%s'", certified,
               frame.hello().node());
      stream->Abort(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 absl::StrCat("node '", topology_.self, "' refuses the Hello of '", frame.hello().node(),
                                              "': the caller's certificate names node '", certified, "'")));
      return;
    }
    absl::Status ok = CheckHello(frame.hello(), /*from_dialer=*/true);
    if (!ok.ok()) {
      Neighbour* from = Find(frame.hello().node());
      if (from != nullptr && from->last_refusal == ok.message()) {
        QNET_LOG(log_, kDebug, "rejected peer stream again: %s", ok.message());
      } else {
        QNET_LOG(log_, kWarn, "rejected peer stream: %s", ok.message());
        if (from != nullptr) from->last_refusal = std::string(ok.message());
      }
      stream->Abort(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(ok.message())));
      return;
    }
    Neighbour& n = *Find(frame.hello().node());
    stream->Send(MakeHello());
    if (n.stream != nullptr) {
      // The neighbour dialed again (it restarted, or its old stream died
      // without us noticing yet): the new stream replaces the old one.
      PeerStreamPtr old = std::move(n.stream);
      MarkDown(n, "it reconnected");
      old->Abort(grpc::Status(grpc::StatusCode::ABORTED, "replaced by a new stream"));
    }
    Establish(n, std::move(stream));
    return;
  }

  Neighbour* n = FindByStream(stream);
  if (n == nullptr) return;  // a stream we already gave up on
  n->last_heard = WallClock::now();
  ++n->state.frames_received;
  if (n->stream == stream && !AdmitFrame(*n, stream, arrived)) return;
  n->state.bytes_received += frame.ByteSizeLong();

  if (n->dialing == stream) {
    if (!frame.has_hello()) {
      QNET_LOG(log_, kWarn, "%s answered without a Hello", n->state.name);
      stream->Abort(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "expected a Hello"));
      return;
    }
    absl::Status ok = CheckHello(frame.hello(), /*from_dialer=*/false);
    if (ok.ok() && frame.hello().node() != n->state.name) {
      ok = absl::FailedPreconditionError(absl::StrCat("dialed '", n->state.name, "' but node '",
                                                      frame.hello().node(), "' answered"));
    }
    if (!ok.ok()) {
      QNET_LOG(log_, kWarn, "dropping stream to %s: %s", n->state.name, ok.message());
      stream->Abort(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, std::string(ok.message())));
      return;
    }
    n->dialing = nullptr;
    Establish(*n, std::move(stream));
    return;
  }

  if (frame.has_lag()) loop_.lag().OnNeighbourReport(n->state.name, frame.lag(), WallClock::now());
  switch (frame.kind_case()) {
    case v1::PeerFrame::kBatch:
      ++n->state.batches_received;
      Receive(*n, *frame.mutable_batch());
      break;
    case v1::PeerFrame::kHeartbeat:
      break;
    case v1::PeerFrame::kGoodbye:
      QNET_LOG(log_, kInfo, "%s is leaving: %s", n->state.name, frame.goodbye().reason());
      break;
    case v1::PeerFrame::kHello:
      QNET_LOG(log_, kWarn, "unexpected second Hello from %s ignored", n->state.name);
      break;
    case v1::PeerFrame::KIND_NOT_SET:
      break;
  }
}

bool PeerLinks::AdmitFrame(Neighbour& n, const PeerStreamPtr& stream, WallClock::time_point arrived) {
  const double limit = timing_.max_frames_per_second;
  if (!(limit > 0)) return true;
  // Arrivals of an old and a new stream may interleave slightly: time only runs forward here.
  if (arrived > n.tokens_at) {
    n.frame_tokens = std::min(limit, n.frame_tokens + Seconds(arrived - n.tokens_at) * limit);
    n.tokens_at = arrived;
  }
  if (n.frame_tokens >= 1) {
    n.frame_tokens -= 1;
    return true;
  }
  const std::string why =
      absl::StrCat("neighbour '", n.state.name, "' sent frames faster than ", limit,
                   " per second (qnetd --max-peer-frames-per-second); its stream is closed, and it may reconnect");
  QNET_LOG(log_, kWarn, "%s", why);
  ++n.state.frame_limit_closes;
  MarkDown(n, "it sent frames faster than the limit");
  stream->Abort(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, why));
  ScheduleRedial(n);
  return false;
}

void PeerLinks::OnClosed(PeerStreamPtr stream, grpc::Status status) {
  if (auto it = pending_.find(stream); it != pending_.end()) {
    loop_.CancelTimer(it->second.handshake_timer);
    pending_.erase(it);
    return;
  }
  Neighbour* n = FindByStream(stream);
  if (n == nullptr) return;
  if (n->dialing == stream) {
    n->dialing = nullptr;
    loop_.CancelTimer(n->handshake_timer);
    n->handshake_timer = kNoTimer;
    std::string error = status.error_message();
    if (error != n->last_dial_error) {
      QNET_LOG(log_, kDebug, "dial to %s failed: %s", n->state.name, error);
    }
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION && error != n->last_dial_error) {
      // A configuration mismatch will not fix itself quickly: say so loudly.
      QNET_LOG(log_, kWarn, "%s refused our stream: %s", n->state.name, error);
    }
    n->last_dial_error = error;
    ScheduleRedial(*n);
    return;
  }
  // The established stream ended.
  std::string why = status.ok() ? std::string("stream closed") : status.error_message();
  MarkDown(*n, why);
  ScheduleRedial(*n);
}

void PeerLinks::Establish(Neighbour& n, PeerStreamPtr stream) {
  loop_.CancelTimer(n.handshake_timer);
  n.handshake_timer = kNoTimer;
  loop_.CancelTimer(n.redial_timer);
  n.redial_timer = kNoTimer;
  n.stream = std::move(stream);
  n.state.connected = true;
  ++n.state.times_connected;
  n.backoff = timing_.min_redial;
  n.last_dial_error.clear();
  n.last_refusal.clear();
  n.last_heard = n.last_sent = n.last_keepalive = WallClock::now();
  n.keepalive_timer = loop_.StartWallTimer(timing_.heartbeat_interval, [this, &n] { Keepalive(n); });
  QNET_LOG(log_, kInfo, "link %s to %s is up (%s)", n.state.link, n.state.name,
           n.stream->dialed() ? "dialed" : "accepted");
  if (sink_ != nullptr) sink_->OnNeighbourUp(n.state.name);
}

void PeerLinks::MarkDown(Neighbour& n, const std::string& why) {
  if (!n.state.connected) return;
  n.state.connected = false;
  n.stream = nullptr;
  loop_.CancelTimer(n.keepalive_timer);
  n.keepalive_timer = kNoTimer;
  loop_.CancelTimer(n.inbound_timer);
  n.inbound_timer = kNoTimer;
  // Messages still on the wire of a dead link are lost with it.
  n.state.messages_dropped += n.outbound.size();
  n.outbound.clear();
  n.inbound.clear();
  QNET_LOG(log_, kInfo, "link %s to %s is down: %s", n.state.link, n.state.name, why);
  if (sink_ != nullptr) sink_->OnNeighbourDown(n.state.name);
}

void PeerLinks::Keepalive(Neighbour& n) {
  n.keepalive_timer = kNoTimer;
  if (!n.state.connected) return;
  auto now = WallClock::now();
  // If this timer fired late, this process was the one starved (frames the
  // neighbour sent meanwhile may still be queued behind it): judge the
  // neighbour at the next tick, after the backlog has run.
  const bool we_stalled = now - n.last_keepalive > 2 * timing_.heartbeat_interval + timing_.silence_limit / 4;
  n.last_keepalive = now;
  if (!we_stalled && now - n.last_heard > timing_.silence_limit) {
    PeerStreamPtr stream = n.stream;
    MarkDown(n, absl::StrFormat("nothing heard for %.1fs", Seconds(now - n.last_heard)));
    stream->Abort(grpc::Status(grpc::StatusCode::UNAVAILABLE, "neighbour went silent"));
    ScheduleRedial(n);
    return;
  }
  if (now - n.last_sent >= timing_.heartbeat_interval) {
    v1::PeerFrame frame;
    frame.mutable_heartbeat()->set_sent_unix_ns(UnixNowNs());
    *frame.mutable_lag() = loop_.lag().OwnReport(now);
    n.state.bytes_sent += frame.ByteSizeLong();
    n.stream->Send(std::move(frame));
    n.last_sent = now;
  }
  n.keepalive_timer = loop_.StartWallTimer(timing_.heartbeat_interval, [this, &n] { Keepalive(n); });
}

void PeerLinks::Send(const std::string& neighbour, v1::PeerMessage message) {
  Neighbour* n = Find(neighbour);
  if (n == nullptr) {
    QNET_LOG(log_, kWarn, "dropped a message to '%s', which is not a neighbour of %s", neighbour, topology_.self);
    return;
  }
  if (!n->state.connected) {
    ++n->state.messages_dropped;
    QNET_LOG(log_, kDebug, "dropped a message to %s: link down", neighbour);
    return;
  }
  v1::PeerEnvelope& envelope = n->outbound.emplace_back();
  *envelope.mutable_message() = std::move(message);
  envelope.set_sent_unix_ns(UnixNowNs());
  if (!n->flush_posted) {
    n->flush_posted = true;
    // Everything sent during this loop turn goes out in one frame.
    loop_.Post([this, n] { Flush(*n); });
  }
}

void PeerLinks::Flush(Neighbour& n) {
  n.flush_posted = false;
  if (!n.state.connected || n.outbound.empty()) return;
  // Everything of this loop turn, in as few frames as stay under the frame
  // cap (a burst of photon batches is megabytes; gRPC refuses over 4 MiB).
  n.state.messages_sent += n.outbound.size();
  n.last_sent = WallClock::now();
  size_t next = 0;
  while (next < n.outbound.size()) {
    v1::PeerFrame frame;
    auto* envelopes = frame.mutable_batch()->mutable_envelopes();
    size_t bytes = 0;
    while (next < n.outbound.size()) {
      const size_t size = n.outbound[next].ByteSizeLong() + 8;  // + tag and length
      if (envelopes->size() > 0 && bytes + size > FrameQueue::kMaxFrameBytes) break;
      envelopes->Add(std::move(n.outbound[next++]));
      bytes += size;
    }
    *frame.mutable_lag() = loop_.lag().OwnReport(n.last_sent);
    n.state.bytes_sent += frame.ByteSizeLong();
    n.stream->Send(std::move(frame));
  }
  n.outbound.clear();
}

void PeerLinks::Receive(Neighbour& n, v1::PeerBatch& batch) {
  // Held until sent + classical delay. Send times come from the sender's
  // wall clock (exact on one host); what is already spent in transit is
  // taken off the hold, never more than all of it.
  const auto now = WallClock::now();
  const int64_t unix_now = UnixNowNs();
  const int64_t hold_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(n.hold).count();
  for (auto& envelope : *batch.mutable_envelopes()) {
    const int64_t in_transit = std::max<int64_t>(unix_now - envelope.sent_unix_ns(), 0);
    auto due = now + std::chrono::duration_cast<WallClock::duration>(std::chrono::nanoseconds(hold_ns - in_transit));
    auto deliver_at = std::max(due, now);
    if (!n.inbound.empty()) deliver_at = std::max(deliver_at, n.inbound.back().deliver_at);  // keep order
    n.inbound.push_back(Held{deliver_at, due, std::move(*envelope.mutable_message())});
    ++n.state.messages_received;
  }
  DeliverDue(n);
}

void PeerLinks::DeliverDue(Neighbour& n) {
  if (n.inbound_timer != kNoTimer) return;  // the timer will deliver
  while (!n.inbound.empty() && n.state.connected) {
    auto now = WallClock::now();
    if (n.inbound.front().deliver_at > now) {
      n.inbound_timer = loop_.StartWallTimer(n.inbound.front().deliver_at - now, [this, &n] {
        n.inbound_timer = kNoTimer;
        DeliverDue(n);
      });
      return;
    }
    // A message later than its send time plus the fibre delay is the
    // software's lag (transport, either loop), not the link's.
    loop_.lag().OnEvent(n.inbound.front().due, now);
    v1::PeerMessage message = std::move(n.inbound.front().message);
    n.inbound.pop_front();
    if (sink_ != nullptr) sink_->OnPeerMessage(n.state.name, message);
  }
}

void PeerLinks::CloseAll(const std::string& reason) {
  closed_ = true;
  for (auto& [name, n] : neighbours_) {
    loop_.CancelTimer(n.redial_timer);
    n.redial_timer = kNoTimer;
    Flush(n);
    if (n.stream != nullptr) n.stream->Close(reason);
    if (n.dialing != nullptr) n.dialing->Abort(grpc::Status(grpc::StatusCode::CANCELLED, reason));
  }
  for (auto& [stream, pending] : pending_) {
    loop_.CancelTimer(pending.handshake_timer);
    stream->Abort(grpc::Status(grpc::StatusCode::UNAVAILABLE, reason));
  }
  pending_.clear();
}

void PeerLinks::AbortAll() {
  for (auto& [name, n] : neighbours_) {
    if (n.stream != nullptr) n.stream->Abort(grpc::Status(grpc::StatusCode::CANCELLED, "shutting down"));
    if (n.dialing != nullptr) n.dialing->Abort(grpc::Status(grpc::StatusCode::CANCELLED, "shutting down"));
  }
}

std::vector<NeighbourState> PeerLinks::Neighbours() const {
  std::vector<NeighbourState> out;  // in the network file's link order
  for (const NeighbourLink& link : topology_.neighbours) out.push_back(neighbours_.at(link.neighbour).state);
  return out;
}

bool PeerLinks::IsConnected(const std::string& neighbour) const {
  auto it = neighbours_.find(neighbour);
  return it != neighbours_.end() && it->second.state.connected;
}

}  // namespace qnet::daemon
