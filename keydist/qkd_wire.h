// The wire form of QKD post-processing messages (qkd/post_processing.h):
// each qkd::QkdMessage struct as its message in proto/qnet/v1/qkd_messages.proto,
// in a QkdMessage envelope with the session id, so two nodes can run
// post-processing over any byte channel (the key distribution protocol sends
// them as network-layer datagrams).
//
// Bit strings travel packed, 8 bits per byte; sorted pair ids as varint
// gaps; Cascade ranges as three packed lists. Decoding checks everything a
// struct's consumer relies on (bit-string sizes, id order, range bounds,
// seed sizes) and fails with InvalidArgument naming what is wrong, so a
// garbled, truncated or inconsistent message never reaches the protocol.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/repeated_field.h"
#include "qkd/bit_string.h"
#include "qkd/post_processing.h"
#include "qnet/v1/qkd_messages.pb.h"

namespace qnet::keydist {

// A post-processing message and the session it belongs to.
struct QkdWireMessage {
  uint64_t session_id = 0;
  qkd::QkdMessage message;
};

// Bytes <-> message.
std::string EncodeQkdMessage(uint64_t session_id, const qkd::QkdMessage& message);
absl::StatusOr<QkdWireMessage> DecodeQkdMessage(std::string_view bytes);

// Proto <-> message, for envelopes that carry a v1::QkdMessage inside.
void QkdMessageToProto(uint64_t session_id, const qkd::QkdMessage& message, v1::QkdMessage* out);
absl::StatusOr<QkdWireMessage> QkdMessageFromProto(const v1::QkdMessage& proto);

// The pieces, shared with the key distribution protocol's own messages.
// `what` names the field in errors ("sample bits").
void BitsToProto(const qkd::BitString& bits, v1::QkdBits* out);
absl::StatusOr<qkd::BitString> BitsFromProto(const v1::QkdBits& proto, std::string_view what);
// Strictly increasing ids as gaps (the first id, then differences).
void PairIdsToProto(const std::vector<uint64_t>& ids, google::protobuf::RepeatedField<uint64_t>* out);
absl::StatusOr<std::vector<uint64_t>> PairIdsFromProto(const google::protobuf::RepeatedField<uint64_t>& gaps,
                                                       std::string_view what);

}  // namespace qnet::keydist
