// Closed forms of single-photon BB84 prepare-and-measure, the reference the
// sampled physics (physical/prepare_measure.h) and the physical layer's
// photon path are checked against. For tests only: the library never uses
// them, its figures must emerge from sampling.
//
// Single-photon BB84, per gate, Bob in Alice's basis (the sifted events).
// A photon reaches Bob and is registered with eta = T * eta_d, T =
// 10^(-alpha L / 10). A registered photon lands in the wrong detector with
// probability e (e = e_d without Eve). Each of the two detectors also fires a
// dark count with probability p_d, independently; a double click gives a
// random bit. Enumerating (photon right / photon wrong / no photon) x (dark
// counts):
//   right  eta (1-e):   single right (1-p_d),  double p_d
//   wrong  eta e:       single wrong (1-p_d),  double p_d
//   none   (1-eta):     single right p_d(1-p_d), single wrong p_d(1-p_d),
//                       double p_d^2, nothing (1-p_d)^2
// so
//   p_click = 1 - (1 - eta)(1 - p_d)^2
//   p_error = eta e (1-p_d) + (1-eta) p_d (1-p_d) + [eta p_d + (1-eta) p_d^2] / 2
//   QBER    = p_error / p_click.
// To first order in p_d this is the single-photon model of Lo, Ma & Chen,
// PRL 94, 230504 (2005), eqs. for Q_1 and e_1 with Y_0 = 2 p_d, e_0 = 1/2:
// Q_1 = Y_0 + eta, e_1 Q_1 = e_0 Y_0 + e_d eta (as used for the single-photon
// part of GLLP, Gottesman-Lo-Lutkenhaus-Preskill, QIC 4, 325 (2004)).
//
// Intercept-resend on a fraction x: Eve's basis is Alice's with probability
// 1/2 (she resends Alice's state: error e_d at Bob) and the other one with
// probability 1/2 (Bob's outcome is random: error 1/2), so
//   e = (1 - x) e_d + x (e_d / 2 + 1/4),
// which is x/4 for e_d = 0 (Bennett et al., J. Cryptology 5, 3 (1992)).
#pragma once

#include <cmath>

namespace qnet::physical::reference {

inline double Transmittance(double attenuation_db_per_km, double length_km) {
  return std::pow(10.0, -attenuation_db_per_km * length_km / 10.0);
}

inline double ClickProbability(double eta, double p_d) { return 1.0 - (1.0 - eta) * (1.0 - p_d) * (1.0 - p_d); }

inline double SiftedErrorProbability(double eta, double p_d, double e) {
  return eta * e * (1.0 - p_d) + (1.0 - eta) * p_d * (1.0 - p_d) + 0.5 * (eta * p_d + (1.0 - eta) * p_d * p_d);
}

inline double ClosedFormQber(double eta, double p_d, double e) {
  return SiftedErrorProbability(eta, p_d, e) / ClickProbability(eta, p_d);
}

inline double PhotonErrorWithEavesdropper(double e_d, double x) { return (1.0 - x) * e_d + x * (0.5 * e_d + 0.25); }

// Standard error of a fraction estimated from n Bernoulli(p) trials.
inline double BinomialSigma(double p, double n) { return std::sqrt(p * (1.0 - p) / n); }

}  // namespace qnet::physical::reference
