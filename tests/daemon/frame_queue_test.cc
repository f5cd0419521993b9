// Batching of outbound peer frames.
#include "daemon/frame_queue.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace qnet::daemon {
namespace {

v1::PeerFrame Batch(std::initializer_list<uint64_t> generation_ids) {
  v1::PeerFrame frame;
  for (uint64_t id : generation_ids) {
    frame.mutable_batch()->add_envelopes()->mutable_message()->mutable_physical()->mutable_abort()->set_generation_id(
        id);
  }
  return frame;
}

std::vector<uint64_t> Ids(const v1::PeerFrame& frame) {
  std::vector<uint64_t> ids;
  for (const auto& e : frame.batch().envelopes()) ids.push_back(e.message().physical().abort().generation_id());
  return ids;
}

v1::PeerFrame Heartbeat() {
  v1::PeerFrame frame;
  frame.mutable_heartbeat()->set_sent_unix_ns(1);
  return frame;
}

TEST(FrameQueueTest, QueuedBatchesMergeInOrder) {
  FrameQueue q;
  q.Push(Batch({1, 2}));
  q.Push(Batch({3}));
  q.Push(Batch({4, 5}));
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(Ids(*q.StartNext()), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST(FrameQueueTest, FrameBeingWrittenIsNeverChanged) {
  FrameQueue q;
  q.Push(Batch({1}));
  v1::PeerFrame* writing = q.StartNext();
  ASSERT_NE(writing, nullptr);
  EXPECT_EQ(q.StartNext(), nullptr);  // one write at a time
  q.Push(Batch({2}));
  q.Push(Batch({3}));
  EXPECT_EQ(Ids(*writing), (std::vector<uint64_t>{1}));
  ASSERT_EQ(q.size(), 2u);
  q.PopInFlight();
  EXPECT_EQ(Ids(*q.StartNext()), (std::vector<uint64_t>{2, 3}));
}

TEST(FrameQueueTest, OtherFramesKeepTheirPlace) {
  FrameQueue q;
  q.Push(Batch({1}));
  q.Push(Heartbeat());
  q.Push(Batch({2}));
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(Ids(*q.StartNext()), (std::vector<uint64_t>{1}));
  q.PopInFlight();
  EXPECT_TRUE(q.StartNext()->has_heartbeat());
  q.PopInFlight();
  EXPECT_EQ(Ids(*q.StartNext()), (std::vector<uint64_t>{2}));
}

TEST(FrameQueueTest, MergingStopsAtTheCap) {
  FrameQueue q;
  for (int i = 0; i < FrameQueue::kMaxMessagesPerFrame + 1; ++i) q.Push(Batch({static_cast<uint64_t>(i)}));
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q.StartNext()->batch().envelopes_size(), FrameQueue::kMaxMessagesPerFrame);
  q.PopInFlight();
  EXPECT_EQ(Ids(*q.StartNext()), (std::vector<uint64_t>{static_cast<uint64_t>(FrameQueue::kMaxMessagesPerFrame)}));
}

TEST(FrameQueueTest, DropQueuedKeepsTheWriteInFlight) {
  FrameQueue q;
  q.Push(Batch({1}));
  q.StartNext();
  q.Push(Heartbeat());
  q.Push(Batch({2}));
  q.DropQueued();
  ASSERT_EQ(q.size(), 1u);
  q.PopInFlight();
  EXPECT_TRUE(q.empty());
}

// A burst of photon batches (~150 kB each) must not merge past the byte
// cap: gRPC refuses a message over 4 MiB and the link would drop.
TEST(FrameQueueTest, MergingStopsAtTheByteCap) {
  auto photons = [](uint64_t session) {
    v1::PeerFrame frame;
    v1::PhotonPulses* p = frame.mutable_batch()->add_envelopes()->mutable_message()->mutable_physical()
                              ->mutable_photon_pulses();
    p->set_session_id(session);
    for (int i = 0; i < 4096; ++i) {
      v1::PhotonPulses::Photon* photon = p->add_photons();
      photon->set_pulse_id(static_cast<uint64_t>(i) * 1000);
      photon->set_x(0.5);
      photon->set_z(-0.5);
    }
    return frame;
  };
  const size_t one = photons(0).ByteSizeLong();
  ASSERT_GT(one, 100'000u);
  FrameQueue q;
  const int frames = 60;  // ~8 MB in all
  for (int i = 0; i < frames; ++i) q.Push(photons(i));
  size_t messages = 0, largest = 0;
  uint64_t expected_session = 0;
  while (v1::PeerFrame* f = q.StartNext()) {
    largest = std::max(largest, f->ByteSizeLong());
    for (const auto& e : f->batch().envelopes()) {
      EXPECT_EQ(e.message().physical().photon_pulses().session_id(), expected_session++);  // in order
      ++messages;
    }
    q.PopInFlight();
  }
  EXPECT_EQ(messages, static_cast<size_t>(frames));
  EXPECT_LE(largest, FrameQueue::kMaxFrameBytes);
  EXPECT_GT(largest, FrameQueue::kMaxFrameBytes - 2 * one);  // still merged up to the cap
}

}  // namespace
}  // namespace qnet::daemon
