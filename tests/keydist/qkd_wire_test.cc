// The wire form of QKD post-processing messages: every message kind survives
// a round trip field for field; a whole post-processing session run through
// encode/decode ends with identical keys; encoded sizes stay within a small
// factor of the structs' WireBytes() accounting; garbage, every truncation
// and inconsistent contents (bit-string sizes, id order, ranges, seed sizes)
// are rejected with InvalidArgument naming the problem.
#include "keydist/qkd_wire.h"

#include <deque>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/escaping.h"

namespace qnet::keydist {
namespace {

using ::testing::HasSubstr;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Field-by-field equality of two messages of the same kind.
bool SameMessage(const qkd::QkdMessage& a, const qkd::QkdMessage& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      Overloaded{
          [&](const qkd::BasisAnnouncement& x) {
            const auto& y = std::get<qkd::BasisAnnouncement>(b);
            return x.pair_ids == y.pair_ids && x.x_basis == y.x_basis;
          },
          [&](const qkd::SampleAnnouncement& x) {
            const auto& y = std::get<qkd::SampleAnnouncement>(b);
            return x.sample_seed == y.sample_seed && x.sifted_bits == y.sifted_bits &&
                   x.sample_size == y.sample_size && x.sample_bits == y.sample_bits;
          },
          [&](const qkd::SampleReply& x) { return x.sample_bits == std::get<qkd::SampleReply>(b).sample_bits; },
          [&](const qkd::CascadeParityRequest& x) {
            const auto& y = std::get<qkd::CascadeParityRequest>(b);
            if (x.shuffle_seed != y.shuffle_seed || x.key_bits != y.key_bits || x.ranges.size() != y.ranges.size()) {
              return false;
            }
            for (size_t i = 0; i < x.ranges.size(); ++i) {
              if (x.ranges[i].pass != y.ranges[i].pass || x.ranges[i].begin != y.ranges[i].begin ||
                  x.ranges[i].end != y.ranges[i].end) {
                return false;
              }
            }
            return true;
          },
          [&](const qkd::CascadeParityReply& x) { return x.parities == std::get<qkd::CascadeParityReply>(b).parities; },
          [&](const qkd::ReconciliationDone& x) {
            return x.corrected_bits == std::get<qkd::ReconciliationDone>(b).corrected_bits;
          },
          [&](const qkd::VerificationTag& x) {
            const auto& y = std::get<qkd::VerificationTag>(b);
            return x.key_bits == y.key_bits && x.point == y.point && x.tag == y.tag;
          },
          [&](const qkd::VerificationResult& x) { return x.match == std::get<qkd::VerificationResult>(b).match; },
          [&](const qkd::PrivacyAmplificationSeed& x) {
            const auto& y = std::get<qkd::PrivacyAmplificationSeed>(b);
            return x.input_bits == y.input_bits && x.output_bits == y.output_bits &&
                   x.toeplitz_seed == y.toeplitz_seed;
          },
          [&](const qkd::AbortNotice& x) { return x.reason == std::get<qkd::AbortNotice>(b).reason; },
          [&](const qkd::DecoyAnnouncement& x) {
            const auto& y = std::get<qkd::DecoyAnnouncement>(b);
            return x.intensities == y.intensities && x.x_bits == y.x_bits;
          },
      },
      a);
}

// One message of every kind, with sizes that are not multiples of 8 or 64.
std::vector<qkd::QkdMessage> OneOfEach() {
  Rng rng(7);
  std::vector<qkd::QkdMessage> all;
  all.push_back(qkd::BasisAnnouncement{{0, 3, 4, 1000, 1ull << 40, ~0ull}, qkd::BitString::FromBits({1, 0, 1, 1, 0, 1})});
  all.push_back(qkd::SampleAnnouncement{0xfedcba9876543210ull, 1234, 123, qkd::BitString::Random(123, rng)});
  all.push_back(qkd::SampleReply{qkd::BitString::Random(77, rng)});
  all.push_back(qkd::CascadeParityRequest{42, 5000, {{0, 0, 7}, {3, 4000, 5000}, {15, 12, 13}, {1, 9, 9}}});
  all.push_back(qkd::CascadeParityReply{qkd::BitString::Random(130, rng)});
  all.push_back(qkd::ReconciliationDone{17});
  all.push_back(qkd::VerificationTag{4999, 0x8000000000000001ull, 0x0123456789abcdefull});
  all.push_back(qkd::VerificationResult{true});
  all.push_back(qkd::VerificationResult{false});
  all.push_back(qkd::PrivacyAmplificationSeed{100, 29, qkd::BitString::Random(128, rng)});
  all.push_back(qkd::AbortNotice{"QKD aborted: measured QBER 12.00% exceeds the abort threshold 11.00%"});
  all.push_back(qkd::DecoyAnnouncement{{0, 1, 2, 0, 0, 2, 1, 0, 0, 1, 2}, qkd::BitString::FromBits({1, 0, 0, 1, 1})});
  return all;
}

TEST(QkdWireTest, EveryMessageKindRoundTripsFieldForField) {
  std::vector<qkd::QkdMessage> all = OneOfEach();
  for (size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(qkd::MessageName(all[i]));
    const uint64_t session = 0x123456789ull + i;
    const std::string bytes = EncodeQkdMessage(session, all[i]);
    absl::StatusOr<QkdWireMessage> decoded = DecodeQkdMessage(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->session_id, session);
    EXPECT_TRUE(SameMessage(all[i], decoded->message));
    EXPECT_EQ(EncodeQkdMessage(session, decoded->message), bytes);
  }
  // Empty bit strings and id lists are valid too.
  for (const qkd::QkdMessage& m : std::vector<qkd::QkdMessage>{
           qkd::BasisAnnouncement{}, qkd::SampleReply{}, qkd::CascadeParityReply{}, qkd::CascadeParityRequest{},
           qkd::PrivacyAmplificationSeed{}, qkd::AbortNotice{}, qkd::DecoyAnnouncement{}}) {
    absl::StatusOr<QkdWireMessage> decoded = DecodeQkdMessage(EncodeQkdMessage(0, m));
    ASSERT_TRUE(decoded.ok()) << qkd::MessageName(m) << ": " << decoded.status();
    EXPECT_TRUE(SameMessage(m, decoded->message)) << qkd::MessageName(m);
  }
}

// Two ends whose every message crosses as bytes.
TEST(QkdWireTest, AWholeSessionOverBytesGivesIdenticalKeysAndSizesNearWireBytes) {
  Rng rng(11);
  std::vector<qkd::Detection> a, b;
  for (uint64_t id = 0; id < 40000; ++id) {
    const auto ba = rng.Bernoulli(0.5) ? qkd::Basis::kX : qkd::Basis::kZ;
    const auto bb = rng.Bernoulli(0.5) ? qkd::Basis::kX : qkd::Basis::kZ;
    const bool bit = rng.Bernoulli(0.5);
    a.push_back({id * 3, ba, bit});
    b.push_back({id * 3, bb, ba == bb ? bit != rng.Bernoulli(0.03) : rng.Bernoulli(0.5)});
  }
  auto alice = qkd::PostProcessing::Create(qkd::Role::kAlice, a, {}, 1);
  auto bob = qkd::PostProcessing::Create(qkd::Role::kBob, b, {}, 2);
  ASSERT_TRUE(alice.ok() && bob.ok());
  std::deque<std::string> to_alice, to_bob;
  std::set<size_t> kinds;
  size_t encoded_total = 0, accounted_total = 0;
  auto post = [&](std::deque<std::string>& queue, std::vector<qkd::QkdMessage> out) {
    for (const qkd::QkdMessage& m : out) {
      std::string bytes = EncodeQkdMessage(99, m);
      kinds.insert(m.index());
      const size_t accounted = qkd::WireBytes(m);
      // Protobuf's tags and lengths cost a few bytes per field; packed bits
      // and varint gaps cost what WireBytes() counts, Cascade ranges less.
      EXPECT_LE(bytes.size(), accounted + accounted / 4 + 16) << qkd::MessageName(m);
      EXPECT_GE(4 * bytes.size() + 16, accounted) << qkd::MessageName(m);
      encoded_total += bytes.size();
      accounted_total += accounted;
      queue.push_back(std::move(bytes));
    }
  };
  post(to_bob, alice->Start());
  post(to_alice, bob->Start());
  int guard = 0;
  while ((!to_alice.empty() || !to_bob.empty()) && ++guard < 100000) {
    if (!to_bob.empty()) {
      auto m = DecodeQkdMessage(to_bob.front());
      to_bob.pop_front();
      ASSERT_TRUE(m.ok()) << m.status();
      EXPECT_EQ(m->session_id, 99u);
      post(to_alice, bob->Receive(m->message));
    }
    if (!to_alice.empty()) {
      auto m = DecodeQkdMessage(to_alice.front());
      to_alice.pop_front();
      ASSERT_TRUE(m.ok()) << m.status();
      post(to_bob, alice->Receive(m->message));
    }
  }
  ASSERT_EQ(alice->state(), qkd::PostProcessing::State::kDone) << alice->status();
  ASSERT_EQ(bob->state(), qkd::PostProcessing::State::kDone) << bob->status();
  EXPECT_EQ(alice->key(), bob->key());
  EXPECT_GT(alice->key().size(), 0u);
  EXPECT_EQ(alice->report().key_id, bob->report().key_id);
  // Everything but AbortNotice crossed (9 kinds).
  EXPECT_EQ(kinds.size(), 9u);
  EXPECT_LE(encoded_total, accounted_total + accounted_total / 10);
  EXPECT_GE(encoded_total, accounted_total / 2);
}

TEST(QkdWireTest, GarbageIsRejected) {
  std::vector<std::string> garbage = {"", "hello, world", std::string(32, '\xff'), std::string(5, '\0'),
                                      std::string("\x08\x01", 2)};  // a session id and no message
  Rng rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string s(1 + rng.UniformInt(64), '\0');
    for (char& c : s) c = static_cast<char>(rng.UniformInt(256));
    garbage.push_back(std::move(s));
  }
  for (const std::string& g : garbage) {
    absl::StatusOr<QkdWireMessage> m = DecodeQkdMessage(g);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << absl::CEscape(g);
    EXPECT_THAT(m.status().message(), HasSubstr("malformed")) << absl::CEscape(g);
  }
}

TEST(QkdWireTest, EveryTruncationIsRejected) {
  for (const qkd::QkdMessage& m : OneOfEach()) {
    const std::string bytes = EncodeQkdMessage(0xabcdef, m);
    for (size_t n = 0; n < bytes.size(); ++n) {
      absl::StatusOr<QkdWireMessage> decoded = DecodeQkdMessage(std::string_view(bytes).substr(0, n));
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument)
          << qkd::MessageName(m) << " cut to " << n << " of " << bytes.size() << " bytes";
    }
  }
}

// Well-formed protobuf whose contents contradict themselves.
TEST(QkdWireTest, InconsistentContentsAreRejectedNamingTheProblem) {
  auto expect_invalid = [](const v1::QkdMessage& proto, const std::string& what) {
    absl::StatusOr<QkdWireMessage> m = DecodeQkdMessage(proto.SerializeAsString());
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_THAT(m.status().message(), HasSubstr(what));
  };
  {
    v1::QkdMessage p;
    p.mutable_sample_reply()->mutable_sample_bits()->set_size(20);
    p.mutable_sample_reply()->mutable_sample_bits()->set_packed("ab");  // 20 bits need 3 bytes
    expect_invalid(p, "20 bits need 3 packed bytes but 2 came");
    p.mutable_sample_reply()->mutable_sample_bits()->set_size(1ull << 62);  // a forged huge size
    expect_invalid(p, "packed bytes");
  }
  {
    v1::QkdMessage p;
    p.mutable_parity_reply()->mutable_parities()->set_size(4);
    p.mutable_parity_reply()->mutable_parities()->set_packed("\x1f");  // bit 4 set beyond size 4
    expect_invalid(p, "unused high bits");
  }
  {
    v1::QkdMessage p;
    auto* b = p.mutable_basis_announcement();
    for (uint64_t gap : {5, 1, 2}) b->add_pair_id_gaps(gap);
    b->mutable_x_basis()->set_size(2);
    b->mutable_x_basis()->set_packed("\x01");
    expect_invalid(p, "3 pair ids but 2 bases");
    b->set_pair_id_gaps(1, 0);
    b->mutable_x_basis()->set_size(3);
    expect_invalid(p, "repeats");
    b->set_pair_id_gaps(1, ~0ull);
    expect_invalid(p, "overflows");
  }
  {
    v1::QkdMessage p;
    auto* s = p.mutable_sample_announcement();
    s->set_sifted_bits(100);
    s->set_sample_size(10);
    s->mutable_sample_bits()->set_size(9);
    s->mutable_sample_bits()->set_packed("\0\0", 2);
    expect_invalid(p, "a sample of 10 bits carries 9 bits");
    s->set_sifted_bits(5);
    s->set_sample_size(9);
    expect_invalid(p, "from a 5-bit sifted key");
  }
  {
    v1::QkdMessage p;
    auto* r = p.mutable_parity_request();
    r->set_key_bits(100);
    r->add_range_pass(0);
    r->add_range_begin(90);
    r->add_range_length(11);
    expect_invalid(p, "outside the 100-bit key");
    r->set_range_length(0, 10);
    r->set_range_pass(0, 16);
    expect_invalid(p, "names pass 16");
    r->set_range_pass(0, 1);
    r->add_range_pass(2);
    expect_invalid(p, "range lists of different lengths");
  }
  {
    v1::QkdMessage p;
    auto* s = p.mutable_privacy_amplification_seed();
    s->set_input_bits(10);
    s->set_output_bits(4);
    s->mutable_toeplitz_seed()->set_size(12);
    s->mutable_toeplitz_seed()->set_packed("\0\0", 2);
    expect_invalid(p, "a 12-bit seed for 10 -> 4 bits (needs 13)");
    s->set_output_bits(11);
    expect_invalid(p, "11 output bits from a 10-bit key");
  }
  {
    v1::QkdMessage p;
    p.set_session_id(5);
    expect_invalid(p, "no post-processing message");
  }
}

}  // namespace
}  // namespace qnet::keydist

namespace qnet::keydist {
namespace {

TEST(QkdWireTest, DecoyAnnouncementWithAmbiguousOrMismatchedFlagsIsRefused) {
  v1::QkdMessage proto;
  v1::QkdDecoyAnnouncement* d = proto.mutable_decoy_announcement();
  BitsToProto(qkd::BitString::FromBits({0, 1, 0}), d->mutable_decoy());
  BitsToProto(qkd::BitString::FromBits({0, 1, 1}), d->mutable_vacuum());  // pulse 1: both
  absl::StatusOr<QkdWireMessage> both = QkdMessageFromProto(proto);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(both.status().message()), ::testing::HasSubstr("pulse 1 is flagged both decoy and vacuum"));
  BitsToProto(qkd::BitString::FromBits({0, 0}), d->mutable_vacuum());
  absl::StatusOr<QkdWireMessage> lengths = QkdMessageFromProto(proto);
  ASSERT_FALSE(lengths.ok());
  EXPECT_THAT(std::string(lengths.status().message()), ::testing::HasSubstr("3 decoy flags but 2 vacuum flags"));
  BitsToProto(qkd::BitString::FromBits({0, 0, 1}), d->mutable_vacuum());
  absl::StatusOr<QkdWireMessage> fine = QkdMessageFromProto(proto);
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(std::get<qkd::DecoyAnnouncement>(fine->message).intensities, (std::vector<uint8_t>{0, 1, 2}));
}

}  // namespace
}  // namespace qnet::keydist
