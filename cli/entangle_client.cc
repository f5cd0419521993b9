#include "cli/entangle_client.h"

#include <cctype>
#include <chrono>
#include <cmath>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "qnet/v1/node_service.grpc.pb.h"

namespace qnet::cli {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::optional<link::MeasurementBasis> ParseBasis(const std::string& name) {
  for (auto b : {link::MeasurementBasis::kZ, link::MeasurementBasis::kX, link::MeasurementBasis::kY,
                 link::MeasurementBasis::kChshA0, link::MeasurementBasis::kChshA1, link::MeasurementBasis::kChshB0,
                 link::MeasurementBasis::kChshB1}) {
    if (link::MeasurementBasisName(b) == name) return b;
  }
  return std::nullopt;
}

std::optional<quantum::BellState> ParseBell(const std::string& name) {
  for (auto b : {quantum::BellState::kPhiPlus, quantum::BellState::kPsiPlus, quantum::BellState::kPhiMinus,
                 quantum::BellState::kPsiMinus}) {
    if (quantum::BellName(b) == name) return b;
  }
  return std::nullopt;
}

bool Near(double a, double b) { return std::abs(a - b) < 1e-9; }

// Which of link's measurement bases a response's axis is, seen from the
// given end of the pair; nullopt for other axes.
enum class End { kA, kB };
std::optional<link::MeasurementBasis> ChshSetting(const v1::MeasureQubitResponse& r, End end) {
  if (!Near(r.phi(), 0.0)) return std::nullopt;
  if (end == End::kA) {
    if (Near(r.theta(), 0.0)) return link::MeasurementBasis::kChshA0;
    if (Near(r.theta(), M_PI / 2)) return link::MeasurementBasis::kChshA1;
  } else {
    if (Near(r.theta(), M_PI / 4)) return link::MeasurementBasis::kChshB0;
    if (Near(r.theta(), -M_PI / 4)) return link::MeasurementBasis::kChshB1;
  }
  return std::nullopt;
}

std::optional<link::MeasurementBasis> PauliAxis(const v1::MeasureQubitResponse& r) {
  if (Near(r.theta(), 0.0) && Near(r.phi(), 0.0)) return link::MeasurementBasis::kZ;
  if (Near(r.theta(), M_PI / 2) && Near(r.phi(), 0.0)) return link::MeasurementBasis::kX;
  if (Near(r.theta(), M_PI / 2) && Near(r.phi(), M_PI / 2)) return link::MeasurementBasis::kY;
  return std::nullopt;
}

}  // namespace

absl::StatusOr<EntangleResult> RunEntangle(const std::string& address, const v1::EntangleRequest& request,
                                           absl::Duration deadline,
                                           const std::function<void(const v1::PairEvent&)>& on_pair,
                                           EntangleResult* partial,
                                           const std::function<void(const v1::EntangleProgress&)>& on_progress) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  auto reader = stub->Entangle(&context, request);
  EntangleResult result;
  v1::EntangleEvent event;
  while (reader->Read(&event)) {
    if (event.has_pair()) {
      if (on_pair) on_pair(event.pair());
      result.pairs.push_back(event.pair());
    } else if (event.has_summary()) {
      result.summary = event.summary();
    } else if (event.has_progress() && on_progress) {
      on_progress(event.progress());
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    if (partial != nullptr) *partial = std::move(result);
    return FromGrpc(status);
  }
  return result;
}

absl::StatusOr<std::vector<v1::PairEvent>> FetchOutcomes(const std::string& far_address, const std::string& origin,
                                                         const std::vector<v1::PairEvent>& pairs,
                                                         absl::Duration wait) {
  auto stub = v1::Node::NewStub(security::ClientChannel(far_address));
  const absl::Time give_up = absl::Now() + wait;
  v1::GetOutcomesResponse response;
  for (;;) {
    v1::GetOutcomesRequest request;
    request.set_origin(origin);
    for (const v1::PairEvent& p : pairs) request.add_entanglement_ids(p.entanglement_id());
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    response.Clear();
    grpc::Status s = stub->GetOutcomes(&context, request, &response);
    if (!s.ok()) return FromGrpc(s);
    if (static_cast<size_t>(response.outcomes_size()) >= pairs.size() || absl::Now() > give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::vector<v1::PairEvent>(response.outcomes().begin(), response.outcomes().end());
}

std::vector<apps::MeasuredPair> MatchPairs(const std::string& origin, const std::vector<v1::PairEvent>& near,
                                           const std::vector<v1::PairEvent>& far) {
  absl::flat_hash_map<std::string, const v1::PairEvent*> by_id;
  for (const v1::PairEvent& p : far) by_id[p.entanglement_id()] = &p;
  std::vector<apps::MeasuredPair> matched;
  for (const v1::PairEvent& p : near) {
    auto it = by_id.find(p.entanglement_id());
    if (it == by_id.end()) continue;
    const v1::PairEvent& q = *it->second;
    auto bell = ParseBell(p.bell_state());
    auto basis_near = ParseBasis(p.basis());
    auto basis_far = ParseBasis(q.basis());
    if (!bell || !basis_near || !basis_far || p.outcome() < 0 || q.outcome() < 0) continue;
    const bool origin_is_a = p.node_a() == origin;
    apps::MeasuredPair m;
    m.bell_state = *bell;
    m.basis_a = origin_is_a ? *basis_near : *basis_far;
    m.basis_b = origin_is_a ? *basis_far : *basis_near;
    m.outcome_a = origin_is_a ? p.outcome() : q.outcome();
    m.outcome_b = origin_is_a ? q.outcome() : p.outcome();
    matched.push_back(m);
  }
  return matched;
}

absl::StatusOr<v1::MeasureQubitRequest> MeasureRequest(const std::string& entanglement_id, std::string_view basis) {
  v1::MeasureQubitRequest request;
  request.set_entanglement_id(entanglement_id);
  const std::string text(basis);
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "z") {
    request.set_axis(v1::MeasureQubitRequest::Z);
  } else if (lower == "x") {
    request.set_axis(v1::MeasureQubitRequest::X);
  } else if (lower == "y") {
    request.set_axis(v1::MeasureQubitRequest::Y);
  } else {
    double angle = 0;
    if (!absl::SimpleAtod(lower, &angle) || !std::isfinite(angle)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the basis must be z, x, y or an angle in radians in the X-Z plane (e.g. 0.785398), got '", text, "'"));
    }
    request.set_xz_angle(angle);
  }
  return request;
}

v1::MeasureQubitRequest MeasureRequest(const std::string& entanglement_id, double xz_angle) {
  v1::MeasureQubitRequest request;
  request.set_entanglement_id(entanglement_id);
  request.set_xz_angle(xz_angle);
  return request;
}

HeldPairClient::HeldPairClient(const std::string& address)
    : stub_(v1::Node::NewStub(security::ClientChannel(address))) {}

HeldPairClient::~HeldPairClient() = default;

absl::StatusOr<v1::MeasureQubitResponse> HeldPairClient::Measure(const v1::MeasureQubitRequest& request,
                                                                 absl::Duration not_found_wait) {
  const absl::Time give_up = absl::Now() + not_found_wait;
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(15)));
    v1::MeasureQubitResponse response;
    grpc::Status s = stub_->MeasureQubit(&context, request, &response);
    if (s.ok()) return response;
    if (s.error_code() != grpc::StatusCode::NOT_FOUND || absl::Now() > give_up) return FromGrpc(s);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

absl::StatusOr<v1::MeasureQubitResponse> MeasureQubit(const std::string& address,
                                                      const v1::MeasureQubitRequest& request,
                                                      absl::Duration not_found_wait) {
  return HeldPairClient(address).Measure(request, not_found_wait);
}

std::vector<absl::StatusOr<v1::MeasureQubitResponse>> MeasureHeldPairs(
    const std::string& address, const std::vector<v1::MeasureQubitRequest>& requests,
    absl::Duration not_found_wait) {
  HeldPairClient client(address);
  std::vector<absl::StatusOr<v1::MeasureQubitResponse>> results;
  results.reserve(requests.size());
  for (const v1::MeasureQubitRequest& request : requests) results.push_back(client.Measure(request, not_found_wait));
  return results;
}

std::vector<apps::MeasuredPair> MatchMeasuredQubits(const std::vector<v1::MeasureQubitResponse>& one_end,
                                                    const std::vector<v1::MeasureQubitResponse>& other_end) {
  absl::flat_hash_map<std::string, const v1::MeasureQubitResponse*> by_id;
  for (const v1::MeasureQubitResponse& r : other_end) by_id[r.entanglement_id()] = &r;
  std::vector<apps::MeasuredPair> matched;
  for (const v1::MeasureQubitResponse& p : one_end) {
    auto it = by_id.find(p.entanglement_id());
    if (it == by_id.end()) continue;
    const v1::MeasureQubitResponse& q = *it->second;
    // Each response names the node it was measured at; the Bell state's
    // first qubit is node_a's.
    if (p.node() == q.node() || (p.node() != p.node_a() && q.node() != p.node_a())) continue;
    const v1::MeasureQubitResponse& a = p.node() == p.node_a() ? p : q;
    const v1::MeasureQubitResponse& b = p.node() == p.node_a() ? q : p;
    auto bell = ParseBell(a.bell_state());
    if (!bell || a.outcome() < 0 || b.outcome() < 0) continue;
    apps::MeasuredPair m;
    m.bell_state = *bell;
    m.outcome_a = a.outcome();
    m.outcome_b = b.outcome();
    const auto chsh_a = ChshSetting(a, End::kA);
    const auto chsh_b = ChshSetting(b, End::kB);
    const auto axis_a = PauliAxis(a);
    const auto axis_b = PauliAxis(b);
    if (chsh_a && chsh_b) {
      m.basis_a = *chsh_a;
      m.basis_b = *chsh_b;
    } else if (axis_a && axis_b && *axis_a == *axis_b) {
      m.basis_a = m.basis_b = *axis_a;
    } else {
      continue;
    }
    matched.push_back(m);
  }
  return matched;
}

absl::StatusOr<v1::TeleportSummary> RunTeleport(const std::string& address, const v1::TeleportRequest& request,
                                                absl::Duration deadline,
                                                const std::function<void(const v1::TeleportShot&)>& on_shot,
                                                const std::function<void(const v1::TeleportProgress&)>& on_progress) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  auto reader = stub->Teleport(&context, request);
  v1::TeleportSummary summary;
  bool have_summary = false;
  v1::TeleportEvent event;
  while (reader->Read(&event)) {
    if (event.has_shot()) {
      if (on_shot) on_shot(event.shot());
    } else if (event.has_summary()) {
      summary = event.summary();
      have_summary = true;
    } else if (event.has_progress() && on_progress) {
      on_progress(event.progress());
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (!have_summary) return absl::InternalError("the daemon ended the teleport call without a summary");
  return summary;
}

absl::StatusOr<v1::GhzSummary> RunGhz(const std::string& address, const v1::GhzRequest& request,
                                      absl::Duration deadline,
                                      const std::function<void(const v1::ShotProgress&)>& on_progress) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  auto reader = stub->Ghz(&context, request);
  std::optional<v1::GhzSummary> summary;
  v1::GhzEvent event;
  while (reader->Read(&event)) {
    if (event.has_summary()) summary = event.summary();
    if (event.has_progress() && on_progress) on_progress(event.progress());
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (!summary.has_value()) return absl::InternalError("the daemon ended the GHZ call without a summary");
  return *summary;
}

absl::StatusOr<v1::RunCircuitSummary> RunCircuit(const std::string& address, const v1::RunCircuitRequest& request,
                                                 absl::Duration deadline,
                                                 const std::function<void(const v1::ShotProgress&)>& on_progress) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  auto reader = stub->RunCircuit(&context, request);
  std::optional<v1::RunCircuitSummary> summary;
  v1::RunCircuitEvent event;
  while (reader->Read(&event)) {
    if (event.has_summary()) summary = event.summary();
    if (event.has_progress() && on_progress) on_progress(event.progress());
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (!summary.has_value()) return absl::InternalError("the daemon ended the circuit call without a summary");
  return *summary;
}

absl::Status SetTeleportState(std::string_view text, v1::TeleportRequest& request) {
  const size_t comma = text.find(',');
  if (comma == std::string_view::npos) {
    request.set_named_state(std::string(text));
    return absl::OkStatus();
  }
  double theta = 0, phi = 0;
  if (!absl::SimpleAtod(std::string(text.substr(0, comma)), &theta) ||
      !absl::SimpleAtod(std::string(text.substr(comma + 1)), &phi) ||
      !std::isfinite(theta) || !std::isfinite(phi)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--state must be 0, 1, +, -, +i, -i or THETA,PHI in radians (e.g. 1.0472,0.7854), got '", std::string(text), "'"));
  }
  request.mutable_angles()->set_theta(theta);
  request.mutable_angles()->set_phi(phi);
  return absl::OkStatus();
}

absl::StatusOr<v1::QkdSummary> RunQkd(const std::string& address, const v1::QkdRequest& request,
                                      absl::Duration deadline,
                                      const std::function<void(const v1::QkdProgress&)>& on_progress) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  auto reader = stub->Qkd(&context, request);
  std::optional<v1::QkdSummary> summary;
  v1::QkdEvent event;
  while (reader->Read(&event)) {
    if (event.has_progress()) {
      if (on_progress) on_progress(event.progress());
    } else if (event.has_summary()) {
      summary = event.summary();
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (!summary) return absl::InternalError("the daemon ended the QKD call without a summary");
  return *std::move(summary);
}

absl::StatusOr<v1::GetKeyResponse> FetchKey(const std::string& address, const std::string& key_id,
                                            absl::Duration not_found_wait) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  const absl::Time give_up = absl::Now() + not_found_wait;
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::GetKeyRequest request;
    request.set_key_id(key_id);
    v1::GetKeyResponse key;
    grpc::Status status = stub->GetKey(&context, request, &key);
    if (status.ok()) return key;
    if (status.error_code() != grpc::StatusCode::NOT_FOUND || absl::Now() >= give_up) return FromGrpc(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

absl::StatusOr<v1::GetStatusResponse> GetStatus(const std::string& address) {
  auto stub = v1::Node::NewStub(security::ClientChannel(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  v1::GetStatusResponse status;
  grpc::Status s = stub->GetStatus(&context, v1::GetStatusRequest(), &status);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat(address, ": ", s.error_message()));
  return status;
}

}  // namespace qnet::cli
