// ReliableChannel alone, over the fake runtime's fixed-delay wires: when it
// resends (each message on its own exponential backoff, although one timer
// serves them all), that acks stop it, that an ack rides on a reply, and
// that no timer is left once everything is acknowledged.
#include "link/reliable_channel.h"

#include <chrono>
#include <vector>

#include "gtest/gtest.h"
#include "tests/physical/fake_runtime.h"

namespace qnet::link {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using testing::FakeNodeContext;
using testing::VirtualClock;

constexpr Duration kDelay = microseconds(10);

// A message with a body (reliable messages must carry one).
v1::LinkMessage Hello() {
  v1::LinkMessage m;
  m.mutable_hello();
  return m;
}

// A copy of a reliable message seen at the far end.
struct Arrival {
  uint64_t seq;
  TimePoint at;
};

class ReliableChannelTest : public ::testing::Test {
 protected:
  ReliableChannelTest() {
    FakeNodeContext::Connect(a_context_, b_context_, kDelay);
    b_context_.receive = [this](const std::string&, const v1::PeerMessage& m) {
      const v1::LinkMessage& link = m.link();
      if (link.seq() != 0) b_arrivals_.push_back({link.seq(), clock_.Now()});
      if (!b_acks_(link.seq())) return;  // as if lost on the way in
      const bool fresh = b_.Receive(link);
      if (fresh && b_replies_) {
        b_.SendReliable(Hello());
      }
      b_.FlushAcksLater();
    };
    a_context_.receive = [this](const std::string&, const v1::PeerMessage& m) {
      a_.Receive(m.link());
      a_.FlushAcksLater();
    };
  }

  void SendFromA() { a_.SendReliable(Hello()); }

  std::vector<TimePoint> ArrivalsOf(uint64_t seq) const {
    std::vector<TimePoint> out;
    for (const Arrival& arrival : b_arrivals_) {
      if (arrival.seq == seq) out.push_back(arrival.at);
    }
    return out;
  }

  static TimePoint At(Duration d) { return TimePoint{} + d; }

  VirtualClock clock_;
  FakeNodeContext a_context_{clock_, "a", 1};
  FakeNodeContext b_context_{clock_, "b", 2};
  // Initial timeout 1 ms, floor 100 us.
  ReliableChannel a_{a_context_, "ab", "b", 1, milliseconds(1), microseconds(100)};
  ReliableChannel b_{b_context_, "ab", "a", 2, milliseconds(1), microseconds(100)};
  std::function<bool(uint64_t seq)> b_acks_ = [](uint64_t) { return true; };
  bool b_replies_ = false;
  std::vector<Arrival> b_arrivals_;
};

TEST_F(ReliableChannelTest, EachUnacknowledgedMessageBacksOffOnItsOwnSchedule) {
  b_acks_ = [](uint64_t) { return false; };
  SendFromA();                    // seq 1 at 0
  clock_.RunFor(microseconds(300));
  SendFromA();                    // seq 2 at 300 us
  clock_.RunUntil(At(milliseconds(8)));
  // Timeouts 1, 2, 4 ms from each first sending: resent at T, 3T, 7T after it.
  EXPECT_EQ(ArrivalsOf(1), (std::vector<TimePoint>{At(kDelay), At(milliseconds(1) + kDelay),
                                                   At(milliseconds(3) + kDelay), At(milliseconds(7) + kDelay)}));
  EXPECT_EQ(ArrivalsOf(2),
            (std::vector<TimePoint>{At(microseconds(300) + kDelay), At(microseconds(1300) + kDelay),
                                    At(microseconds(3300) + kDelay), At(microseconds(7300) + kDelay)}));
  EXPECT_EQ(a_.retransmissions(), 6u);
  EXPECT_EQ(a_.unacknowledged(), 2u);
}

TEST_F(ReliableChannelTest, AMessageDueBeforeTheArmedTimerIsResentOnTime) {
  // seq 1 is never acknowledged (timeout 1 ms); seq 2's ack measures a
  // 20 us round trip, so the timeout falls to its 100 us floor; seq 3,
  // sent after that, is due long before seq 1 and must not wait for it.
  b_acks_ = [](uint64_t seq) { return seq == 2; };
  SendFromA();
  SendFromA();
  clock_.RunFor(microseconds(100));
  ASSERT_EQ(a_.retransmit_timeout(), microseconds(100));
  b_acks_ = [](uint64_t) { return false; };
  SendFromA();  // seq 3 at 100 us
  clock_.RunUntil(At(microseconds(500)));
  EXPECT_EQ(ArrivalsOf(3), (std::vector<TimePoint>{At(microseconds(100) + kDelay), At(microseconds(200) + kDelay),
                                                   At(microseconds(400) + kDelay)}));
  EXPECT_EQ(ArrivalsOf(1), (std::vector<TimePoint>{At(kDelay)}));
}

TEST_F(ReliableChannelTest, AcknowledgedMessagesAreNotResentAndLeaveNoTimer) {
  for (int i = 0; i < 5; ++i) SendFromA();
  // Acked after one 20 us round trip, long before the 1 ms timeout.
  clock_.RunUntil(At(microseconds(100)));
  EXPECT_EQ(a_.unacknowledged(), 0u);
  EXPECT_EQ(a_.retransmissions(), 0u);
  EXPECT_EQ(b_arrivals_.size(), 5u);
  EXPECT_EQ(clock_.pending(), 0u);  // no retransmission or ack timer left behind
  // The five arrive at the same instant: their acks go in one message.
  ASSERT_EQ(b_context_.sent.size(), 1u);
  EXPECT_EQ(b_context_.sent[0].second.link().acks_size(), 5);
}

TEST_F(ReliableChannelTest, AnAckRidesOnTheReply) {
  b_replies_ = true;
  SendFromA();
  clock_.RunUntil(At(milliseconds(20)));
  // b sent only its reply (carrying the ack); a acknowledged the reply alone.
  ASSERT_EQ(b_context_.sent.size(), 1u);
  EXPECT_TRUE(b_context_.sent[0].second.link().has_hello());
  EXPECT_EQ(b_context_.sent[0].second.link().acks_size(), 1);
  EXPECT_EQ(a_.unacknowledged(), 0u);
  EXPECT_EQ(b_.unacknowledged(), 0u);
  EXPECT_EQ(a_.retransmissions() + b_.retransmissions(), 0u);
}

TEST_F(ReliableChannelTest, ResetStopsResending) {
  b_acks_ = [](uint64_t) { return false; };
  SendFromA();
  clock_.RunFor(microseconds(1500));
  a_.Reset();
  clock_.RunUntil(At(milliseconds(20)));
  EXPECT_EQ(ArrivalsOf(1).size(), 2u);  // the first sending and the 1 ms resend
  EXPECT_EQ(clock_.pending(), 0u);
}

TEST(ReliableChannelAckDelayTest, AnAckWaitsForAMessageToRideOnThenGoesAlone) {
  VirtualClock clock;
  FakeNodeContext a_context{clock, "a", 1};
  FakeNodeContext b_context{clock, "b", 2};
  FakeNodeContext::Connect(a_context, b_context, kDelay);
  ReliableChannel a{a_context, "ab", "b", 1, milliseconds(1), microseconds(100)};
  // b's acks wait 25 us for a message of b's to ride on.
  ReliableChannel b{b_context, "ab", "a", 2, milliseconds(1), microseconds(100), microseconds(25)};
  struct Seen {
    TimePoint at;
    int acks;
    bool body;
  };
  std::vector<Seen> at_a;
  a_context.receive = [&](const std::string&, const v1::PeerMessage& m) {
    at_a.push_back({clock.Now(), m.link().acks_size(), m.link().has_hello()});
    a.Receive(m.link());
    a.FlushAcksLater();
  };
  b_context.receive = [&](const std::string&, const v1::PeerMessage& m) {
    b.Receive(m.link());
    b.FlushAcksLater();
  };
  a.SendReliable(Hello());  // at b 10 us; nothing of b's leaves: its ack goes alone at 35 us
  clock.RunUntil(TimePoint{} + microseconds(100));
  a.SendReliable(Hello());  // at b 110 us; b sends at 120 us, and the ack rides on that
  clock.RunUntil(TimePoint{} + microseconds(120));
  b.SendReliable(Hello());
  clock.RunUntil(TimePoint{} + milliseconds(5));
  ASSERT_EQ(at_a.size(), 2u);
  EXPECT_EQ(at_a[0].at, TimePoint{} + microseconds(45));
  EXPECT_EQ(at_a[0].acks, 1);
  EXPECT_FALSE(at_a[0].body);
  EXPECT_EQ(at_a[1].at, TimePoint{} + microseconds(130));
  EXPECT_EQ(at_a[1].acks, 1);
  EXPECT_TRUE(at_a[1].body);
  EXPECT_EQ(a.unacknowledged() + b.unacknowledged(), 0u);
  EXPECT_EQ(a.retransmissions() + b.retransmissions(), 0u);
  // Run: 3 deliveries to b, 2 to a, b's ack timer at 35 us and a's at 130 us.
  // b's second ack timer was cancelled when its ack rode on b's message.
  EXPECT_EQ(clock.events_run(), 7u);
}

// Acks that rode at once make every round trip look the same (rttvar near
// 0); an ack that then waits the peer's whole ack delay must still come
// before the timeout, or the message is resent for nothing.
TEST(ReliableChannelAckDelayTest, AnAckThatWaitsTheWholeDelayCausesNoResend) {
  VirtualClock clock;
  FakeNodeContext a_context{clock, "a", 1};
  FakeNodeContext b_context{clock, "b", 2};
  FakeNodeContext::Connect(a_context, b_context, kDelay);
  // A floor of 1 us, so that only the measured timeout protects the ack.
  constexpr Duration kAckDelay = microseconds(40);
  ReliableChannel a{a_context, "ab", "b", 1, milliseconds(1), microseconds(1), kAckDelay};
  ReliableChannel b{b_context, "ab", "a", 2, milliseconds(1), microseconds(1), kAckDelay};
  bool b_replies = true;
  std::vector<uint64_t> seqs_at_b;
  a_context.receive = [&](const std::string&, const v1::PeerMessage& m) {
    a.Receive(m.link());
    a.FlushAcksLater();
  };
  b_context.receive = [&](const std::string&, const v1::PeerMessage& m) {
    if (m.link().seq() != 0) seqs_at_b.push_back(m.link().seq());
    const bool fresh = b.Receive(m.link());
    if (fresh && b_replies) b.SendOnce(v1::LinkMessage());  // the ack rides on it at once
    b.FlushAcksLater();
  };
  for (int i = 0; i < 20; ++i) {  // 20 round trips of 20 us
    a.SendReliable(Hello());
    clock.RunFor(microseconds(100));
  }
  ASSERT_EQ(a.retransmissions(), 0u);
  ASSERT_LT(a.retransmit_timeout(), microseconds(21) + kAckDelay);
  b_replies = false;
  a.SendReliable(Hello());  // its ack leaves b 40 us after it arrived: back at 60 us
  clock.RunFor(milliseconds(5));
  EXPECT_EQ(a.unacknowledged(), 0u);
  EXPECT_EQ(a.retransmissions(), 0u) << "timeout " << FormatDuration(a.retransmit_timeout());
  EXPECT_EQ(seqs_at_b.size(), 21u);
}

}  // namespace
}  // namespace qnet::link
