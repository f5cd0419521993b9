// Reliable, once-only delivery of link-layer messages to the neighbour at the
// far end of one link, over a classical channel that may lose, delay and
// reorder messages. A reliable message gets a sequence number and is resent
// (with exponential backoff) until the peer acknowledges it; the receiver
// acknowledges every copy and hands each sequence number up once. Acks ride
// on the next outgoing message or, if none leaves within the ack delay, go
// alone (a delay of 0: at the end of the current event).
// One timer per channel serves every message's retransmission deadline (a
// timer per message cost a queued and then cancelled event per message).
// The retransmission timeout adapts to measured round trips (RFC 6298), plus
// the ack delay, which the peer is assumed to share.
// Numbering runs in sessions: Reset starts a new one (seqs from 1 again), and
// a receiver that sees a newer session of its peer forgets the old seqs, so
// the two ends need not reset at the same moment.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "core/node_context.h"
#include "core/time.h"
#include "qnet/v1/link_messages.pb.h"

namespace qnet::link {

class ReliableChannel {
 public:
  // `initial_timeout`: the retransmission timeout before any round trip has
  // been measured; `min_timeout` its floor afterwards. `ack_delay`: how long
  // an ack waits for an outgoing message to ride on (below the peer's
  // retransmission timeout, which adds it to the measured round trip).
  ReliableChannel(NodeContext& context, std::string link, std::string peer, uint64_t incarnation,
                  Duration initial_timeout, Duration min_timeout, Duration ack_delay = Duration(0));
  ~ReliableChannel();
  ReliableChannel(const ReliableChannel&) = delete;
  ReliableChannel& operator=(const ReliableChannel&) = delete;

  // Sends `message` (its body set) until acknowledged.
  void SendReliable(v1::LinkMessage message);
  // Sends once (hello).
  void SendOnce(v1::LinkMessage message);

  // Takes the acks out of an inbound message and notes its sequence number.
  // Returns whether the body is new (false for a duplicate or an ack alone).
  // Its ack is owed: the caller handles the body, whose replies may carry
  // it, then calls FlushAcksLater.
  bool Receive(const v1::LinkMessage& message);
  // Acks that no outgoing message carried yet go alone after the ack delay
  // (unless one carries them first).
  void FlushAcksLater();

  // Drops everything in flight and starts a new sending session: the peer
  // is down. (What was received is kept until the peer's session changes,
  // so a peer that did not notice keeps being deduplicated.)
  void Reset();
  // As Reset, and forgets what was received and the peer's session: the
  // peer restarted (a new incarnation numbers its sessions afresh).
  void ResetForNewPeer();

  // Resends everything unacknowledged now, with fresh timeouts (the peer
  // just became reachable).
  void RetransmitNow();

  Duration retransmit_timeout() const { return rto_; }
  size_t unacknowledged() const { return outstanding_.size(); }
  uint64_t retransmissions() const { return retransmissions_; }

 private:
  struct Outstanding {
    v1::LinkMessage message;
    TimePoint first_sent;
    Duration timeout{0};
    TimePoint deadline;  // resent then unless acknowledged
    bool retransmitted = false;
  };

  void Transmit(v1::LinkMessage message);
  // Sets `o`'s deadline one timeout from now and makes sure the timer fires
  // by then.
  void Arm(Outstanding& o);
  void ArmTimerBy(TimePoint deadline);
  void CancelTimer();
  // Resends every message whose deadline has come, then re-arms for the
  // earliest deadline left.
  void OnTimer();
  void NoteRoundTrip(Duration sample);
  void FlushAcks();
  void ForgetReceived();

  NodeContext& context_;
  std::string link_;
  std::string peer_;
  uint64_t incarnation_;
  Duration min_timeout_;
  Duration max_timeout_;
  Duration ack_delay_;

  uint32_t session_ = 1;
  uint32_t peer_session_ = 0;  // 0: none seen yet
  uint64_t next_seq_ = 1;
  absl::btree_map<uint64_t, Outstanding> outstanding_;
  TimerId timer_ = kNoTimer;  // fires at timer_at_, at or before every deadline
  TimePoint timer_at_;
  // Received: every seq <= contiguous_ plus those in above_.
  uint64_t contiguous_ = 0;
  absl::flat_hash_set<uint64_t> above_;
  std::vector<uint64_t> pending_acks_;
  TimerId ack_timer_ = kNoTimer;

  bool have_rtt_ = false;
  double srtt_s_ = 0.0;
  double rttvar_s_ = 0.0;
  Duration rto_;
  uint64_t retransmissions_ = 0;
};

}  // namespace qnet::link
