#include "keydist/qkd_wire.h"

#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "core/status.h"
#include "qkd/cascade.h"

namespace qnet::keydist {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

absl::Status Invalid(std::string_view message_name, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("malformed QKD %s: %s", message_name, what));
}

}  // namespace

void BitsToProto(const qkd::BitString& bits, v1::QkdBits* out) {
  out->set_size(bits.size());
  std::string packed((bits.size() + 7) / 8, '\0');
  const std::vector<uint64_t>& words = bits.words();
  for (size_t b = 0; b < packed.size(); ++b) {
    packed[b] = static_cast<char>((words[b / 8] >> (8 * (b % 8))) & 0xFF);
  }
  out->set_packed(std::move(packed));
}

absl::StatusOr<qkd::BitString> BitsFromProto(const v1::QkdBits& proto, std::string_view what) {
  const std::string& packed = proto.packed();
  const uint64_t size = proto.size();
  // The size is checked against the bytes present, so a forged size cannot
  // make the decoder allocate more than the message carries.
  if (size / 8 > packed.size() || (size + 7) / 8 != packed.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %d bits need %d packed bytes but %d came", what, size, size / 8 + (size % 8 != 0), packed.size()));
  }
  if (size % 8 != 0) {
    const auto last = static_cast<unsigned char>(packed.back());
    if ((last >> (size % 8)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: the unused high bits of the last byte are not zero (a wrong bit count?)", what));
    }
  }
  std::vector<uint64_t> words((packed.size() + 7) / 8, 0);
  for (size_t b = 0; b < packed.size(); ++b) {
    words[b / 8] |= uint64_t{static_cast<unsigned char>(packed[b])} << (8 * (b % 8));
  }
  return qkd::BitString::FromWords(std::move(words), size);
}

void PairIdsToProto(const std::vector<uint64_t>& ids, google::protobuf::RepeatedField<uint64_t>* out) {
  out->Reserve(static_cast<int>(ids.size()));
  uint64_t previous = 0;
  for (uint64_t id : ids) {
    out->Add(id - previous);
    previous = id;
  }
}

absl::StatusOr<std::vector<uint64_t>> PairIdsFromProto(const google::protobuf::RepeatedField<uint64_t>& gaps,
                                                       std::string_view what) {
  std::vector<uint64_t> ids;
  ids.reserve(gaps.size());
  uint64_t id = 0;
  for (int i = 0; i < gaps.size(); ++i) {
    const uint64_t gap = gaps.Get(i);
    if (i > 0 && gap == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: pair id %d repeats at index %d (ids must strictly increase)", what, id, i));
    }
    if (gap > std::numeric_limits<uint64_t>::max() - id) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: pair id overflows 64 bits at index %d", what, i));
    }
    id += gap;
    ids.push_back(id);
  }
  return ids;
}

void QkdMessageToProto(uint64_t session_id, const qkd::QkdMessage& message, v1::QkdMessage* out) {
  out->set_session_id(session_id);
  std::visit(Overloaded{
                 [out](const qkd::BasisAnnouncement& m) {
                   v1::QkdBasisAnnouncement* p = out->mutable_basis_announcement();
                   PairIdsToProto(m.pair_ids, p->mutable_pair_id_gaps());
                   BitsToProto(m.x_basis, p->mutable_x_basis());
                 },
                 [out](const qkd::SampleAnnouncement& m) {
                   v1::QkdSampleAnnouncement* p = out->mutable_sample_announcement();
                   p->set_sample_seed(m.sample_seed);
                   p->set_sifted_bits(m.sifted_bits);
                   p->set_sample_size(m.sample_size);
                   BitsToProto(m.sample_bits, p->mutable_sample_bits());
                 },
                 [out](const qkd::SampleReply& m) {
                   BitsToProto(m.sample_bits, out->mutable_sample_reply()->mutable_sample_bits());
                 },
                 [out](const qkd::CascadeParityRequest& m) {
                   v1::QkdCascadeParityRequest* p = out->mutable_parity_request();
                   p->set_shuffle_seed(m.shuffle_seed);
                   p->set_key_bits(m.key_bits);
                   p->mutable_range_pass()->Reserve(static_cast<int>(m.ranges.size()));
                   p->mutable_range_begin()->Reserve(static_cast<int>(m.ranges.size()));
                   p->mutable_range_length()->Reserve(static_cast<int>(m.ranges.size()));
                   for (const qkd::CascadeRange& r : m.ranges) {
                     p->add_range_pass(r.pass);
                     p->add_range_begin(r.begin);
                     p->add_range_length(r.end - r.begin);
                   }
                 },
                 [out](const qkd::CascadeParityReply& m) {
                   BitsToProto(m.parities, out->mutable_parity_reply()->mutable_parities());
                 },
                 [out](const qkd::ReconciliationDone& m) {
                   out->mutable_reconciliation_done()->set_corrected_bits(m.corrected_bits);
                 },
                 [out](const qkd::VerificationTag& m) {
                   v1::QkdVerificationTag* p = out->mutable_verification_tag();
                   p->set_key_bits(m.key_bits);
                   p->set_point(m.point);
                   p->set_tag(m.tag);
                 },
                 [out](const qkd::VerificationResult& m) { out->mutable_verification_result()->set_match(m.match); },
                 [out](const qkd::PrivacyAmplificationSeed& m) {
                   v1::QkdPrivacyAmplificationSeed* p = out->mutable_privacy_amplification_seed();
                   p->set_input_bits(m.input_bits);
                   p->set_output_bits(m.output_bits);
                   BitsToProto(m.toeplitz_seed, p->mutable_toeplitz_seed());
                 },
                 [out](const qkd::AbortNotice& m) { out->mutable_abort_notice()->set_reason(m.reason); },
                 [out](const qkd::DecoyAnnouncement& m) {
                   v1::QkdDecoyAnnouncement* p = out->mutable_decoy_announcement();
                   qkd::BitString decoy, vacuum;
                   for (uint8_t k : m.intensities) {
                     decoy.PushBack(k == 1);
                     vacuum.PushBack(k == 2);
                   }
                   BitsToProto(decoy, p->mutable_decoy());
                   BitsToProto(vacuum, p->mutable_vacuum());
                   BitsToProto(m.x_bits, p->mutable_x_bits());
                 },
             },
             message);
}

absl::StatusOr<QkdWireMessage> QkdMessageFromProto(const v1::QkdMessage& proto) {
  QkdWireMessage out;
  out.session_id = proto.session_id();
  switch (proto.body_case()) {
    case v1::QkdMessage::kBasisAnnouncement: {
      const auto& p = proto.basis_announcement();
      qkd::BasisAnnouncement m;
      QNET_ASSIGN_OR_RETURN(m.pair_ids, PairIdsFromProto(p.pair_id_gaps(), "basis announcement"));
      QNET_ASSIGN_OR_RETURN(m.x_basis, BitsFromProto(p.x_basis(), "basis announcement bases"));
      if (m.x_basis.size() != m.pair_ids.size()) {
        return Invalid("basis announcement",
                       absl::StrFormat("%d pair ids but %d bases", m.pair_ids.size(), m.x_basis.size()));
      }
      out.message = std::move(m);
      break;
    }
    case v1::QkdMessage::kSampleAnnouncement: {
      const auto& p = proto.sample_announcement();
      qkd::SampleAnnouncement m;
      m.sample_seed = p.sample_seed();
      m.sifted_bits = p.sifted_bits();
      m.sample_size = p.sample_size();
      QNET_ASSIGN_OR_RETURN(m.sample_bits, BitsFromProto(p.sample_bits(), "sample announcement bits"));
      if (m.sample_bits.size() != m.sample_size) {
        return Invalid("sample announcement", absl::StrFormat("a sample of %d bits carries %d bits", m.sample_size,
                                                              m.sample_bits.size()));
      }
      if (m.sample_size > m.sifted_bits) {
        return Invalid("sample announcement", absl::StrFormat("a sample of %d bits from a %d-bit sifted key",
                                                              m.sample_size, m.sifted_bits));
      }
      out.message = std::move(m);
      break;
    }
    case v1::QkdMessage::kSampleReply: {
      qkd::SampleReply m;
      QNET_ASSIGN_OR_RETURN(m.sample_bits, BitsFromProto(proto.sample_reply().sample_bits(), "sample reply bits"));
      out.message = std::move(m);
      break;
    }
    case v1::QkdMessage::kParityRequest: {
      const auto& p = proto.parity_request();
      if (p.range_pass_size() != p.range_begin_size() || p.range_pass_size() != p.range_length_size()) {
        return Invalid("Cascade parity request",
                       absl::StrFormat("range lists of different lengths (%d passes, %d begins, %d lengths)",
                                       p.range_pass_size(), p.range_begin_size(), p.range_length_size()));
      }
      qkd::CascadeParityRequest m;
      m.shuffle_seed = p.shuffle_seed();
      m.key_bits = p.key_bits();
      m.ranges.reserve(p.range_pass_size());
      for (int i = 0; i < p.range_pass_size(); ++i) {
        const uint64_t pass = p.range_pass(i);
        const uint64_t begin = p.range_begin(i);
        const uint64_t end = begin + p.range_length(i);
        if (pass >= static_cast<uint64_t>(qkd::kMaxCascadePasses)) {
          return Invalid("Cascade parity request",
                         absl::StrFormat("range %d names pass %d (at most %d passes)", i, pass,
                                         qkd::kMaxCascadePasses));
        }
        if (end > m.key_bits || end > std::numeric_limits<uint32_t>::max()) {
          return Invalid("Cascade parity request",
                         absl::StrFormat("range %d [%d, %d) lies outside the %d-bit key", i, begin, end, m.key_bits));
        }
        m.ranges.push_back(
            {static_cast<uint8_t>(pass), static_cast<uint32_t>(begin), static_cast<uint32_t>(end)});
      }
      out.message = std::move(m);
      break;
    }
    case v1::QkdMessage::kParityReply: {
      qkd::CascadeParityReply m;
      QNET_ASSIGN_OR_RETURN(m.parities, BitsFromProto(proto.parity_reply().parities(), "Cascade parities"));
      out.message = std::move(m);
      break;
    }
    case v1::QkdMessage::kReconciliationDone:
      out.message = qkd::ReconciliationDone{proto.reconciliation_done().corrected_bits()};
      break;
    case v1::QkdMessage::kVerificationTag: {
      const auto& p = proto.verification_tag();
      out.message = qkd::VerificationTag{p.key_bits(), p.point(), p.tag()};
      break;
    }
    case v1::QkdMessage::kVerificationResult:
      out.message = qkd::VerificationResult{proto.verification_result().match()};
      break;
    case v1::QkdMessage::kPrivacyAmplificationSeed: {
      const auto& p = proto.privacy_amplification_seed();
      qkd::PrivacyAmplificationSeed m;
      m.input_bits = p.input_bits();
      m.output_bits = p.output_bits();
      QNET_ASSIGN_OR_RETURN(m.toeplitz_seed, BitsFromProto(p.toeplitz_seed(), "Toeplitz seed"));
      if (m.output_bits > m.input_bits) {
        return Invalid("privacy amplification seed",
                       absl::StrFormat("%d output bits from a %d-bit key", m.output_bits, m.input_bits));
      }
      // input + output - 1 cannot overflow: output <= input, and a seed of
      // that many bits was present in the message.
      const uint64_t expected = m.input_bits + m.output_bits > 0 ? m.input_bits + m.output_bits - 1 : 0;
      if (m.toeplitz_seed.size() != expected) {
        return Invalid("privacy amplification seed",
                       absl::StrFormat("a %d-bit seed for %d -> %d bits (needs %d)", m.toeplitz_seed.size(),
                                       m.input_bits, m.output_bits, expected));
      }
      out.message = std::move(m);
      break;
    }
    case v1::QkdMessage::kAbortNotice:
      out.message = qkd::AbortNotice{proto.abort_notice().reason()};
      break;
    case v1::QkdMessage::kDecoyAnnouncement: {
      const auto& p = proto.decoy_announcement();
      QNET_ASSIGN_OR_RETURN(qkd::BitString decoy, BitsFromProto(p.decoy(), "decoy announcement decoy bits"));
      QNET_ASSIGN_OR_RETURN(qkd::BitString vacuum, BitsFromProto(p.vacuum(), "decoy announcement vacuum bits"));
      if (decoy.size() != vacuum.size()) {
        return Invalid("decoy announcement", absl::StrFormat("%d decoy flags but %d vacuum flags", decoy.size(),
                                                             vacuum.size()));
      }
      qkd::DecoyAnnouncement m;
      m.intensities.reserve(decoy.size());
      for (size_t i = 0; i < decoy.size(); ++i) {
        if (decoy.Get(i) && vacuum.Get(i)) {
          return Invalid("decoy announcement", absl::StrFormat("pulse %d is flagged both decoy and vacuum", i));
        }
        m.intensities.push_back(decoy.Get(i) ? 1 : vacuum.Get(i) ? 2 : 0);
      }
      QNET_ASSIGN_OR_RETURN(m.x_bits, BitsFromProto(p.x_bits(), "decoy announcement X bits"));
      out.message = std::move(m);
      break;
    }
    case v1::QkdMessage::BODY_NOT_SET:
      return absl::InvalidArgumentError(
          "malformed QKD message: no post-processing message in the envelope (empty, truncated or from a newer "
          "version)");
  }
  return out;
}

std::string EncodeQkdMessage(uint64_t session_id, const qkd::QkdMessage& message) {
  v1::QkdMessage proto;
  QkdMessageToProto(session_id, message, &proto);
  return proto.SerializeAsString();
}

absl::StatusOr<QkdWireMessage> DecodeQkdMessage(std::string_view bytes) {
  v1::QkdMessage proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "malformed QKD message: %d bytes do not parse as a qnet.v1.QkdMessage (garbled or truncated)", bytes.size()));
  }
  return QkdMessageFromProto(proto);
}

}  // namespace qnet::keydist
