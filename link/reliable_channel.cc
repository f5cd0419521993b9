#include "link/reliable_channel.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

namespace qnet::link {

ReliableChannel::ReliableChannel(NodeContext& context, std::string link, std::string peer, uint64_t incarnation,
                                 Duration initial_timeout, Duration min_timeout, Duration ack_delay)
    : context_(context),
      link_(std::move(link)),
      peer_(std::move(peer)),
      incarnation_(incarnation),
      min_timeout_(min_timeout),
      // Never below the floor: a daemon at a large time scale raises the
      // floor past 10 s of simulated time, and clamp(lo > hi) is undefined.
      max_timeout_(std::max({Duration(std::chrono::seconds(10)), initial_timeout, min_timeout})),
      ack_delay_(ack_delay),
      rto_(std::max(initial_timeout, min_timeout)) {}

ReliableChannel::~ReliableChannel() { ResetForNewPeer(); }

void ReliableChannel::Reset() {
  CancelTimer();
  outstanding_.clear();
  ++session_;
  next_seq_ = 1;
}

void ReliableChannel::ResetForNewPeer() {
  Reset();
  ForgetReceived();
  peer_session_ = 0;
}

void ReliableChannel::ForgetReceived() {
  if (ack_timer_ != kNoTimer) context_.CancelTimer(ack_timer_);
  ack_timer_ = kNoTimer;
  pending_acks_.clear();
  contiguous_ = 0;
  above_.clear();
}

void ReliableChannel::Transmit(v1::LinkMessage message) {
  message.set_link(link_);
  message.set_incarnation(incarnation_);
  message.set_session(session_);
  message.clear_acks();
  message.set_ack_session(peer_session_);
  for (uint64_t ack : pending_acks_) message.add_acks(ack);
  pending_acks_.clear();
  if (ack_timer_ != kNoTimer) {  // they ride on this message
    context_.CancelTimer(ack_timer_);
    ack_timer_ = kNoTimer;
  }
  v1::PeerMessage envelope;
  *envelope.mutable_link() = std::move(message);
  context_.SendToNeighbour(peer_, std::move(envelope));
}

void ReliableChannel::SendReliable(v1::LinkMessage message) {
  const uint64_t seq = next_seq_++;
  message.set_seq(seq);
  Outstanding& o = outstanding_[seq];
  o.message = message;
  o.first_sent = context_.Now();
  o.timeout = rto_;
  Arm(o);
  Transmit(std::move(message));
}

void ReliableChannel::SendOnce(v1::LinkMessage message) {
  message.set_seq(0);
  Transmit(std::move(message));
}

void ReliableChannel::Arm(Outstanding& o) {
  o.deadline = context_.Now() + o.timeout;
  ArmTimerBy(o.deadline);
}

void ReliableChannel::ArmTimerBy(TimePoint deadline) {
  if (timer_ != kNoTimer) {
    if (timer_at_ <= deadline) return;
    context_.CancelTimer(timer_);
  }
  timer_at_ = deadline;
  timer_ = context_.StartTimer(deadline - context_.Now(), [this] {
    timer_ = kNoTimer;
    OnTimer();
  });
}

void ReliableChannel::CancelTimer() {
  if (timer_ != kNoTimer) context_.CancelTimer(timer_);
  timer_ = kNoTimer;
}

void ReliableChannel::OnTimer() {
  const TimePoint now = context_.Now();
  std::optional<TimePoint> earliest;
  for (auto& [seq, o] : outstanding_) {
    if (o.deadline <= now) {
      o.retransmitted = true;
      o.timeout = std::min(max_timeout_, o.timeout * 2);
      o.deadline = now + o.timeout;
      ++retransmissions_;
      v1::LinkMessage copy = o.message;
      Transmit(std::move(copy));
    }
    if (!earliest.has_value() || o.deadline < *earliest) earliest = o.deadline;
  }
  if (earliest.has_value()) ArmTimerBy(*earliest);
}

void ReliableChannel::RetransmitNow() {
  CancelTimer();
  for (auto& [seq, o] : outstanding_) {
    o.retransmitted = true;
    o.timeout = rto_;
    Arm(o);
    ++retransmissions_;
    v1::LinkMessage copy = o.message;
    Transmit(std::move(copy));
  }
}

void ReliableChannel::NoteRoundTrip(Duration sample) {
  const double r = ToSeconds(sample);
  if (!have_rtt_) {
    have_rtt_ = true;
    srtt_s_ = r;
    rttvar_s_ = r / 2;
  } else {
    rttvar_s_ = 0.75 * rttvar_s_ + 0.25 * std::abs(srtt_s_ - r);
    srtt_s_ = 0.875 * srtt_s_ + 0.125 * r;
  }
  // Plus the ack delay (both ends share it), as QUIC adds max_ack_delay: a
  // run of acks that rode at once shrinks rttvar, and the next ack that
  // waits the whole delay would otherwise come after the timeout and cause
  // a spurious resend.
  rto_ = std::clamp(FromSeconds(srtt_s_ + 4.0 * rttvar_s_) + ack_delay_, min_timeout_, max_timeout_);
}

bool ReliableChannel::Receive(const v1::LinkMessage& message) {
  if (message.session() < peer_session_) return false;  // from before the peer's last reset
  if (message.session() > peer_session_) {
    ForgetReceived();
    peer_session_ = message.session();
  }
  // Acks for an earlier session of ours would name seqs now reused.
  if (message.ack_session() == session_) {
    for (uint64_t ack : message.acks()) {
      auto it = outstanding_.find(ack);
      if (it == outstanding_.end()) continue;
      // Karn: only first transmissions give an unambiguous round trip.
      if (!it->second.retransmitted) NoteRoundTrip(context_.Now() - it->second.first_sent);
      outstanding_.erase(it);
    }
    // A timer left armed finds nothing due and re-arms for what is left.
    if (outstanding_.empty()) CancelTimer();
  }
  const uint64_t seq = message.seq();
  if (seq == 0) return message.body_case() != v1::LinkMessage::BODY_NOT_SET;
  pending_acks_.push_back(seq);
  if (seq <= contiguous_ || above_.contains(seq)) return false;
  above_.insert(seq);
  while (above_.erase(contiguous_ + 1) > 0) ++contiguous_;
  return true;
}

void ReliableChannel::FlushAcksLater() {
  if (pending_acks_.empty() || ack_timer_ != kNoTimer) return;
  ack_timer_ = context_.StartTimer(ack_delay_, [this] {
    ack_timer_ = kNoTimer;
    FlushAcks();
  });
}

void ReliableChannel::FlushAcks() {
  if (pending_acks_.empty()) return;
  v1::LinkMessage ack_only;
  ack_only.set_seq(0);
  Transmit(std::move(ack_only));
}

}  // namespace qnet::link
