// What the key distribution files (key_distribution.cc, entangled_sessions.cc,
// bb84.cc, relay.cc) share and the public API does not show: the numbering
// of progress stages, option checks, the wire form of session options and
// statuses.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "keydist/key_distribution.h"
#include "link/link_service.h"
#include "qkd/post_processing.h"
#include "qnet/v1/qkd_messages.pb.h"

namespace qnet::keydist {

// Progress stages, in order (QkdProgress::stage).
inline constexpr const char* kStageNames[] = {"offered", "measuring", "measured",   "chsh",
                                              "sifted",  "estimated", "reconciled", "done"};
inline constexpr int kOffered = 0, kMeasuring = 1, kMeasured = 2, kChsh = 3, kSifted = 4, kEstimated = 5,
                     kReconciled = 6, kDone = 7;

// The bases that make key (Z and X); the others only test.
inline bool IsKeyBasis(link::MeasurementBasis b) {
  return b == link::MeasurementBasis::kZ || b == link::MeasurementBasis::kX;
}

// `s` with `context` before its message, same code.
inline absl::Status WithContext(const absl::Status& s, absl::string_view context) {
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

// Session options a node starts or accepts (InvalidArgument says what is wrong).
absl::Status ValidateSessionOptions(const QkdSessionOptions& o);

// Post-processing options in offers and relay starts.
void PostProcessingToWire(const qkd::PostProcessingOptions& o, v1::KeyDistributionPostProcessing* out);
qkd::PostProcessingOptions PostProcessingFromWire(const v1::KeyDistributionPostProcessing& w);

// A status a peer sent (END, RELAY_ABORT), naming the peer; unknown codes become kUnknown.
absl::Status StatusFromWire(int32_t code, const std::string& message, const std::string& source);

}  // namespace qnet::keydist
