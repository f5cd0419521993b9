#include "daemon/hardware_plane.h"

#include "daemon/raw_messages.h"

#include "absl/strings/str_cat.h"

namespace qnet::daemon {

v1::GroupState GroupToProto(const quantum::GroupState& group) {
  v1::GroupState proto;
  proto.mutable_members()->Add(group.members.begin(), group.members.end());
  const auto n = group.rho.rows();
  proto.mutable_re()->Reserve(static_cast<int>(n * n));
  proto.mutable_im()->Reserve(static_cast<int>(n * n));
  for (Eigen::Index r = 0; r < n; ++r) {
    for (Eigen::Index c = 0; c < n; ++c) {
      proto.add_re(group.rho(r, c).real());
      proto.add_im(group.rho(r, c).imag());
    }
  }
  return proto;
}

absl::StatusOr<quantum::GroupState> GroupFromProto(const v1::GroupState& proto) {
  const int members = proto.members_size();
  if (members == 0 || members > 20) {
    return absl::InvalidArgumentError(absl::StrCat("a moved group has ", members, " members"));
  }
  const int64_t dim = int64_t{1} << members;
  if (proto.re_size() != dim * dim || proto.im_size() != dim * dim) {
    return absl::InvalidArgumentError(absl::StrCat("a moved group of ", members, " qubits carries ",
                                                   proto.re_size(), "/", proto.im_size(),
                                                   " matrix entries, expected ", dim * dim));
  }
  quantum::GroupState group;
  group.members.assign(proto.members().begin(), proto.members().end());
  group.rho.resize(dim, dim);
  for (int64_t r = 0; r < dim; ++r) {
    for (int64_t c = 0; c < dim; ++c) {
      group.rho(r, c) = {proto.re(static_cast<int>(r * dim + c)), proto.im(static_cast<int>(r * dim + c))};
    }
  }
  return group;
}

// ---- client ----

struct HardwarePlaneClient::Call {
  grpc::ClientContext context;
  v1::MoveGroupRequest move_request;
  v1::MoveGroupResponse move_response;
  v1::DiscardQubitRequest discard_request;
  v1::DiscardQubitResponse discard_response;
  v1::HandOverRequest hand_over_request;
  v1::HandOverResponse hand_over_response;
  std::unique_ptr<v1::HardwarePlane::Stub> stub;
};

HardwarePlaneClient::HardwarePlaneClient(std::string self, PeerDirectory& directory,
                                         std::shared_ptr<LoopPoster> poster, std::shared_ptr<CallCounter> calls,
                                         WallClock::duration deadline)
    : self_(std::move(self)),
      directory_(directory),
      poster_(std::move(poster)),
      calls_(std::move(calls)),
      deadline_(deadline) {}

bool HardwarePlaneClient::LiveCalls::Track(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu);
  if (cancelled) return false;
  live.insert(context);
  return true;
}

void HardwarePlaneClient::LiveCalls::Untrack(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu);
  live.erase(context);
}

void HardwarePlaneClient::CancelAll() {
  std::lock_guard<std::mutex> lock(live_->mu);
  live_->cancelled = true;
  for (grpc::ClientContext* context : live_->live) context->TryCancel();
}

void HardwarePlaneClient::RequestMove(const std::string& holder, QubitId qubit, bool by_hint,
                                      std::function<void(absl::StatusOr<MoveReply>)> done) {
  auto channel = directory_.Channel(holder);
  if (!channel.ok()) {
    absl::Status error = absl::UnavailableError(channel.status().message());
    poster_->Post([done = std::move(done), error] { done(error); });
    return;
  }
  auto call = std::make_shared<Call>();
  call->stub = v1::HardwarePlane::NewStub(*channel);
  call->context.set_deadline(std::chrono::system_clock::now() + deadline_);
  call->move_request.set_qubit_id(qubit);
  call->move_request.set_requester(self_);
  call->move_request.set_by_hint(by_hint);
  if (!live_->Track(&call->context)) {
    poster_->Post([done = std::move(done), holder] {
      done(absl::UnavailableError(absl::StrCat("MoveGroup on '", holder, "': this node is shutting down")));
    });
    return;
  }
  calls_->Add();
  // The callback holds what it uses: it may run after this client is gone.
  call->stub->async()->MoveGroup(
      &call->context, &call->move_request, &call->move_response,
      [live = live_, poster = poster_, calls = calls_, call, done = std::move(done),
       holder](grpc::Status status) mutable {
        absl::StatusOr<MoveReply> reply;
        if (!status.ok()) {
          reply = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                               absl::StrCat("MoveGroup on '", holder, "': ", status.error_message()));
        } else {
          MoveReply r;
          switch (call->move_response.outcome_case()) {
            case v1::MoveGroupResponse::kGroup: {
              auto group = GroupFromProto(call->move_response.group());
              if (!group.ok()) {
                reply = group.status();
                break;
              }
              r.group = *std::move(group);
              reply = std::move(r);
              break;
            }
            case v1::MoveGroupResponse::kMovedTo:
              r.moved_to = call->move_response.moved_to();
              reply = std::move(r);
              break;
            default:
              r.not_found = true;
              reply = std::move(r);
              break;
          }
        }
        live->Untrack(&call->context);
        poster->Post([done = std::move(done), reply = std::move(reply)]() mutable { done(std::move(reply)); });
        calls->Done();
      });
}

void HardwarePlaneClient::SendDiscard(const std::string& holder, QubitId qubit, uint32_t hops) {
  auto channel = directory_.Channel(holder);
  if (!channel.ok()) return;  // best effort: the qubit's state is simply not traced out
  auto call = std::make_shared<Call>();
  call->stub = v1::HardwarePlane::NewStub(*channel);
  call->context.set_deadline(std::chrono::system_clock::now() + deadline_);
  call->discard_request.set_qubit_id(qubit);
  call->discard_request.set_requester(self_);
  call->discard_request.set_hops(hops);
  if (!live_->Track(&call->context)) return;  // shutting down: the holder's state goes with it
  calls_->Add();
  call->stub->async()->DiscardQubit(&call->context, &call->discard_request, &call->discard_response,
                                    [live = live_, calls = calls_, call](grpc::Status) {
                                      live->Untrack(&call->context);
                                      calls->Done();
                                    });
}

void HardwarePlaneClient::HandOver(const std::string& to, quantum::GroupState group,
                                   std::function<void(quantum::GroupState)> failed, std::function<void()> arrived) {
  auto channel = directory_.Channel(to);
  if (!channel.ok()) {
    poster_->Post([failed = std::move(failed), group = std::move(group)]() mutable { failed(std::move(group)); });
    return;
  }
  auto call = std::make_shared<Call>();
  call->stub = v1::HardwarePlane::NewStub(*channel);
  call->context.set_deadline(std::chrono::system_clock::now() + deadline_);
  *call->hand_over_request.mutable_group() = GroupToProto(group);
  call->hand_over_request.set_sender(self_);
  if (!live_->Track(&call->context)) {
    poster_->Post([failed = std::move(failed), group = std::move(group)]() mutable { failed(std::move(group)); });
    return;
  }
  calls_->Add();
  call->stub->async()->HandOver(
      &call->context, &call->hand_over_request, &call->hand_over_response,
      [live = live_, poster = poster_, calls = calls_, call, failed = std::move(failed),
       arrived = std::move(arrived), group = std::move(group)](grpc::Status status) mutable {
        live->Untrack(&call->context);
        // UNAVAILABLE: no connection, or the receiver is shutting down (it
        // answers OK once the group is posted to its loop), so it never took
        // the group: keep it. Any other failure: assume the receiver has it.
        // OK: the receiver posted it to its loop, ahead of anything it
        // handles from us later.
        if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
          poster->Post([failed = std::move(failed), group = std::move(group)]() mutable {
            failed(std::move(group));
          });
        } else if (status.ok()) {
          poster->Post(std::move(arrived));
        }
        calls->Done();
      });
}

// ---- service ----

namespace {

grpc::ServerUnaryReactor* Refused(grpc::CallbackServerContext* context, const absl::Status& why) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(why.code()), std::string(why.message())));
  return reactor;
}

// One MoveGroup call. Shared so that work posted to the loop can outlive
// neither more nor less than the call: gRPC drops its reference in OnDone.
class MoveReactor final : public grpc::ServerUnaryReactor, public std::enable_shared_from_this<MoveReactor> {
 public:
  MoveReactor(grpc::CallbackServerContext* context, grpc::ByteBuffer* response,
              DistributedStateBackend& backend, std::shared_ptr<LoopPoster> poster)
      : context_(context), response_(response), backend_(backend), poster_(std::move(poster)) {}

  void Start(QubitId qubit, std::string requester, bool by_hint) {
    self_ = shared_from_this();
    requester_ = requester;
    auto me = self_;
    bool posted = poster_->Post([me, qubit, requester, by_hint] {
      me->backend_.HandleMove(qubit, requester, by_hint,
                              [me](absl::StatusOr<MoveReply> reply) { me->Reply(std::move(reply)); });
    });
    if (!posted) Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"));
  }

  // On the loop.
  void Reply(absl::StatusOr<MoveReply> reply) {
    if (!reply.ok()) {
      Finish(grpc::Status(static_cast<grpc::StatusCode>(reply.status().code()),
                          std::string(reply.status().message())));
      return;
    }
    v1::MoveGroupResponse answer;
    if (reply->group.has_value()) {
      *answer.mutable_group() = GroupToProto(*reply->group);
      sent_group_ = std::move(reply->group);
      move_ = reply->move;
    } else if (!reply->moved_to.empty()) {
      answer.set_moved_to(reply->moved_to);
    } else {
      answer.set_not_found(true);
    }
    *response_ = SerializeMessage(answer);
    Finish(grpc::Status::OK);
  }

  void OnDone() override {
    if (sent_group_.has_value()) {
      auto me = self_;
      if (context_->IsCancelled()) {
        // The requester never got it: the group stays here.
        poster_->Post([me] {
          me->backend_.RestoreGroup(*std::move(me->sent_group_), me->requester_);
          me->backend_.NoteMoveEnded(me->move_, false);
        });
      } else {
        poster_->Post([me] { me->backend_.NoteMoveEnded(me->move_, true); });
      }
    }
    auto keep = std::move(self_);
  }

 private:
  grpc::CallbackServerContext* context_;
  grpc::ByteBuffer* response_;
  DistributedStateBackend& backend_;
  std::shared_ptr<LoopPoster> poster_;
  std::string requester_;
  std::optional<quantum::GroupState> sent_group_;
  uint64_t move_ = 0;
  std::shared_ptr<MoveReactor> self_;
};

}  // namespace

grpc::ServerUnaryReactor* HardwarePlaneService::MoveGroup(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* raw, grpc::ByteBuffer* response) {
  // Parsed first: who may call depends on the requester it names.
  absl::StatusOr<v1::MoveGroupRequest> request = ParseRequest<v1::MoveGroupRequest>(*raw, "MoveGroup");
  if (!request.ok()) return Refused(context, request.status());
  if (absl::Status allowed = policy_.AuthorizeHardware(*context, "MoveGroup", request->requester()); !allowed.ok()) {
    return Refused(context, allowed);
  }
  auto reactor = std::make_shared<MoveReactor>(context, response, backend_, poster_);
  reactor->Start(request->qubit_id(), request->requester(), request->by_hint());
  return reactor.get();
}

grpc::ServerUnaryReactor* HardwarePlaneService::DiscardQubit(grpc::CallbackServerContext* context,
                                                             const grpc::ByteBuffer* raw,
                                                             grpc::ByteBuffer* response) {
  absl::StatusOr<v1::DiscardQubitRequest> request = ParseRequest<v1::DiscardQubitRequest>(*raw, "DiscardQubit");
  if (!request.ok()) return Refused(context, request.status());
  // Forwarded discards come from the daemon that forwards them, on the
  // requester's behalf: any node may forward one (a gap documented in
  // docs/architecture.md, "Trust and the threat model").
  absl::Status allowed = request->hops() == 0
                             ? policy_.AuthorizeHardware(*context, "DiscardQubit", request->requester())
                             : policy_.AuthorizeHardwareFromAnyNode(*context, "DiscardQubit");
  if (!allowed.ok()) return Refused(context, allowed);
  DistributedStateBackend* backend = &backend_;
  poster_->Post([backend, qubit = request->qubit_id(), requester = request->requester(), hops = request->hops()] {
    backend->HandleDiscard(qubit, requester, hops);
  });
  *response = SerializeMessage(v1::DiscardQubitResponse());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* HardwarePlaneService::HandOver(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* raw, grpc::ByteBuffer* response) {
  absl::StatusOr<v1::HandOverRequest> request = ParseRequest<v1::HandOverRequest>(*raw, "HandOver");
  if (!request.ok()) return Refused(context, request.status());
  if (absl::Status allowed = policy_.AuthorizeHardware(*context, "HandOver", request->sender()); !allowed.ok()) {
    return Refused(context, allowed);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<quantum::GroupState> group = GroupFromProto(request->group());
  if (!group.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(group.status().message())));
    return reactor;
  }
  DistributedStateBackend* backend = &backend_;
  bool posted = poster_->Post([backend, group = *std::move(group), sender = request->sender()]() mutable {
    backend->HandleHandOver(std::move(group), sender);
  });
  *response = SerializeMessage(v1::HandOverResponse());
  reactor->Finish(posted ? grpc::Status::OK
                         : grpc::Status(grpc::StatusCode::UNAVAILABLE, "the daemon is shutting down"));
  return reactor;
}

}  // namespace qnet::daemon
