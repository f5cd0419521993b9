#include "cli/entangle_client.h"

#include <chrono>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
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

}  // namespace

absl::StatusOr<EntangleResult> RunEntangle(const std::string& address, const v1::EntangleRequest& request,
                                           absl::Duration deadline,
                                           const std::function<void(const v1::PairEvent&)>& on_pair,
                                           EntangleResult* partial) {
  auto stub = v1::Node::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
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
  auto stub = v1::Node::NewStub(grpc::CreateChannel(far_address, grpc::InsecureChannelCredentials()));
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

}  // namespace qnet::cli
