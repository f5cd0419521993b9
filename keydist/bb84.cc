// BB84: prepare-and-measure with single photons between neighbours, or
// decoy-state BB84 with weak coherent pulses (the session's post-processing
// options carry the intensities; Alice records each pulse's, and her
// post-processing announces them after sifting, qkd/post_processing.h).
//
// A session, I = Alice (the photon sender) and R = Bob, neighbours (one
// link; both KeyDistributions need their node's PhysicalLayer, whose single
// photon receiver KeyDistribution owns):
//  1. OFFER / ACCEPT as for BBM92 (entangled_sessions.cc), but R registers
//     no pair receiver: the photons carry the session id, and R knows the
//     session as (sender, id).
//  2. I sends `pairs` pulses with PhysicalLayer::SendPhotons, pulse ids
//     0 ... pairs - 1, in batches of at most kMaxPulsesPerSend, all at once
//     (the source emits them back to back). I's detections are all her
//     prepared pulses (basis, bit). R's detectors gate every pulse; its
//     detections are the pulses that clicked, with its basis and bit.
//  3. The offer fixes the number of gates: R starts post-processing when it
//     has seen all `pairs` of them, so its basis announcement (only the
//     detected pulses) also tells I the photons are in. I starts its own
//     post-processing when that first message arrives, so neither end
//     reveals a basis before R has measured. Sifting keeps the pulses R
//     detected in I's basis; the rest is post-processing as for BBM92.
// The eavesdropper on the photons is the one recorded at I's physical layer
// (PhysicalLayer::SetEavesdropperFraction): her errors show in the QBER.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "keydist/key_distribution.h"
#include "keydist/session_internals.h"

namespace qnet::keydist {

using link::MeasurementBasis;

absl::Status KeyDistribution::Bb84Possible(const std::string& peer) const {
  if (physical_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "BB84 needs the node's physical layer (photon source and detectors), but key distribution at ", Where(),
        " runs without one; use bbm92"));
  }
  if (!physical_->PhotonStats(peer).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("BB84 runs over one link: ", peer, " is not a neighbour of ",
                                                   Where(), "; use bbm92 or relay"));
  }
  return absl::OkStatus();
}

void KeyDistribution::SendPulses(const SessionKey& key) {
  Session& s = sessions_.at(key);
  const uint64_t pulses = s.options.pairs;
  s.measured.reserve(pulses);
  // Decoy-state BB84: the laser's intensities, signal, decoy and vacuum.
  std::vector<physical::PulseIntensity> intensities;
  if (const auto& decoy = s.options.post_processing.decoy; decoy.has_value()) {
    for (int k = 0; k < 3; ++k) {
      intensities.push_back({decoy->intensities.mean_photon_number[k], decoy->intensities.probability[k]});
    }
  } else if (s.options.laser_mean_photon_number > 0.0) {
    intensities.push_back({s.options.laser_mean_photon_number, 1.0});
  }
  for (uint64_t first = 0; first < pulses; first += physical::PhysicalLayer::kMaxPulsesPerSend) {
    const auto count =
        static_cast<uint32_t>(std::min<uint64_t>(pulses - first, physical::PhysicalLayer::kMaxPulsesPerSend));
    absl::StatusOr<std::vector<physical::PreparedPulse>> prepared =
        physical_->SendPhotons(s.peer, key.id, first, count, intensities);
    if (!prepared.ok()) {
      Fail(key,
           WithContext(prepared.status(), absl::StrCat("BB84 session ", key.id, " with ", s.peer, ": pulses from ",
                                                       first, " not sent")),
           true);
      return;
    }
    for (const physical::PreparedPulse& p : *prepared) {
      s.measured.push_back({p.pulse_id, p.basis == physical::kPolarisationBasisX ? MeasurementBasis::kX
                                                                                  : MeasurementBasis::kZ,
                            p.bit != 0, p.intensity});
    }
  }
  EmitProgress(s, kMeasured);
}

void KeyDistribution::OnPhotons(const std::string& from, uint64_t session,
                                const std::vector<physical::MeasuredPulse>& detections, uint64_t gates) {
  const SessionKey key{from, session};
  auto it = sessions_.find(key);
  if (it == sessions_.end() || it->second.initiator || it->second.options.protocol != QkdProtocol::kBb84 ||
      it->second.stage != Stage::kMeasuring) {
    ++stats_.stray_photon_batches;  // e.g. still in the fibre when the session ended
    return;
  }
  Session& s = it->second;
  for (const physical::MeasuredPulse& d : detections) {
    // Ids outside the session's range or out of order cannot be Alice's.
    if (d.pulse_id >= s.options.pairs || (s.last_pulse.has_value() && d.pulse_id <= *s.last_pulse)) {
      ++s.stray_pairs;
      continue;
    }
    s.last_pulse = d.pulse_id;
    s.measured.push_back(
        {d.pulse_id, d.basis == physical::kPolarisationBasisX ? MeasurementBasis::kX : MeasurementBasis::kZ,
         d.bit != 0});
  }
  s.gates += gates;
  if (s.gates >= s.options.pairs) OnPairsDone(key);
}

}  // namespace qnet::keydist
