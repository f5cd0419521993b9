#include "daemon/peer_stream.h"

#include "absl/strings/str_cat.h"

namespace qnet::daemon {

void CallCounter::Add() {
  std::lock_guard<std::mutex> lock(mu_);
  ++count_;
}

void CallCounter::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--count_ == 0) zero_.notify_all();
}

bool CallCounter::WaitForZero(WallClock::duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return zero_.wait_for(lock, timeout, [this] { return count_ == 0; });
}

int CallCounter::count() {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

namespace {
std::atomic<uint64_t> next_stream_id{1};
}  // namespace

PeerStream::PeerStream(bool dialed, PeerStreamEvents events)
    : dialed_(dialed), id_(next_stream_id.fetch_add(1)), events_(std::move(events)) {
  events_.calls->Add();
}

void PeerStream::Send(v1::PeerFrame frame) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ || ended_) return;
    queue_.Push(std::move(frame));
  }
  Pump();
}

void PeerStream::Close(std::string goodbye_reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return;
    closing_ = true;
    if (!goodbye_reason.empty() && !ended_) {
      v1::PeerFrame goodbye;
      goodbye.mutable_goodbye()->set_reason(std::move(goodbye_reason));
      queue_.Push(std::move(goodbye));
    }
  }
  Pump();
}

void PeerStream::Pump() {
  const v1::PeerFrame* next = nullptr;
  bool end = false;
  bool wrap_up = false;
  bool reads_ended = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.in_flight()) return;  // OnWriteDone pumps again
    if (!queue_.empty() && !write_failed_ && !ended_) {
      next = queue_.StartNext();
    } else {
      if (closing_ && !ended_) {
        ended_ = true;
        end = true;
      }
      if (reads_ended_ && !wrapped_up_) {
        wrapped_up_ = true;
        wrap_up = true;
      }
      reads_ended = reads_ended_;
    }
  }
  // gRPC may run reactions inline, so it is never called with mu_ held.
  if (next != nullptr) {
    frames_written_.fetch_add(1);
    if (next->has_batch()) messages_written_.fetch_add(next->batch().envelopes_size());
    StartWriteFrame(next);
    return;
  }
  if (end) EndStream(reads_ended);
  if (wrap_up) WrapUp();
}

void PeerStream::HandleReadDone(bool ok, v1::PeerFrame* frame) {
  if (ok) {
    events_.poster->Post([on_frame = events_.on_frame, self = shared_from_this(), f = std::move(*frame),
                          arrived = WallClock::now()]() mutable {
      on_frame(std::move(self), std::move(f), arrived);
    });
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    reads_ended_ = true;
    closing_ = true;
    queue_.DropQueued();
  }
  Pump();
}

void PeerStream::HandleWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.PopInFlight();
    if (!ok) {
      write_failed_ = true;
      closing_ = true;
      queue_.DropQueued();
    }
  }
  Pump();
}

void PeerStream::HandleDone(grpc::Status status) {
  PeerStreamPtr self = std::move(self_);
  events_.poster->Post([on_closed = events_.on_closed, self, status]() { on_closed(self, status); });
  events_.calls->Done();
}

namespace {

class ClientPeerStream final : public PeerStream,
                               public grpc::ClientBidiReactor<v1::PeerFrame, v1::PeerFrame> {
 public:
  ClientPeerStream(std::shared_ptr<grpc::Channel> channel, PeerStreamEvents events)
      : PeerStream(/*dialed=*/true, std::move(events)), stub_(v1::Peer::NewStub(std::move(channel))) {}

  void Begin() {
    self_ = shared_from_this();
    stub_->async()->Exchange(&context_, this);
    AddHold();  // writes start outside reactions; released in WrapUp
    StartRead(&read_frame_);
    StartCall();
  }

  void Abort(grpc::Status) override { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    HandleReadDone(ok, &read_frame_);
    if (ok) StartRead(&read_frame_);
  }
  void OnWriteDone(bool ok) override { HandleWriteDone(ok); }
  void OnDone(const grpc::Status& status) override { HandleDone(status); }

 protected:
  void StartWriteFrame(const v1::PeerFrame* frame) override { StartWrite(frame); }
  void EndStream(bool reads_ended) override {
    if (!reads_ended) StartWritesDone();
  }
  void WrapUp() override { RemoveHold(); }

 private:
  std::unique_ptr<v1::Peer::Stub> stub_;
  grpc::ClientContext context_;
  v1::PeerFrame read_frame_;
};

// The accepting end reads and writes raw bytes and parses frames itself:
// gRPC's typed reader reports a frame that does not parse exactly as the
// client half-closing, so garbage would end the stream with OK.
class ServerPeerStream final : public PeerStream,
                               public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ServerPeerStream(PeerStreamEvents events) : PeerStream(/*dialed=*/false, std::move(events)) {}

  void Begin(std::shared_ptr<LoopPoster> poster, std::function<void(PeerStreamPtr)> on_accept) {
    self_ = shared_from_this();
    // Announced before the first read, so the loop hears of the stream
    // before any of its frames.
    poster->Post([on_accept = std::move(on_accept), self = self_] { on_accept(self); });
    StartRead(&read_buffer_);
  }

  void Abort(grpc::Status status) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ended_) finish_status_ = std::move(status);
      closing_ = true;
      queue_.DropQueued();
    }
    Pump();
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      ++frames_read_;
      read_frame_.Clear();
      grpc::Status parsed = grpc::SerializationTraits<v1::PeerFrame>::Deserialize(&read_buffer_, &read_frame_);
      if (!parsed.ok()) {
        // Nothing more is read from a peer that sent garbage.
        Abort(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           absl::StrCat("frame ", frames_read_, " of this stream is not a qnet.v1.PeerFrame (",
                                        parsed.error_message(), "); closing the stream")));
        HandleReadDone(false, nullptr);
        return;
      }
    }
    HandleReadDone(ok, &read_frame_);
    if (ok) StartRead(&read_buffer_);
  }
  void OnWriteDone(bool ok) override { HandleWriteDone(ok); }
  void OnDone() override { HandleDone(finish_status_); }

 protected:
  void StartWriteFrame(const v1::PeerFrame* frame) override {
    // One write in flight at a time (the queue's), so one buffer serves.
    bool own_buffer = false;
    write_buffer_.Clear();  // Serialize wants an empty buffer (the last write's is done)
    grpc::Status s = grpc::SerializationTraits<v1::PeerFrame>::Serialize(*frame, &write_buffer_, &own_buffer);
    if (!s.ok()) {
      Abort(grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("cannot serialise a frame: ", s.error_message())));
      HandleWriteDone(false);
      return;
    }
    StartWrite(&write_buffer_);
  }
  void EndStream(bool) override { Finish(finish_status_); }

 private:
  grpc::ByteBuffer read_buffer_;
  grpc::ByteBuffer write_buffer_;
  v1::PeerFrame read_frame_;
  uint64_t frames_read_ = 0;
  grpc::Status finish_status_;  // OK unless aborted
};

}  // namespace

PeerStreamPtr PeerStream::Dial(std::shared_ptr<grpc::Channel> channel, PeerStreamEvents events) {
  auto stream = std::make_shared<ClientPeerStream>(std::move(channel), std::move(events));
  stream->Begin();
  return stream;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* PeerStream::Accept(
    grpc::CallbackServerContext* /*context*/, PeerStreamEvents events,
    std::function<void(PeerStreamPtr)> on_accept) {
  auto poster = events.poster;
  auto stream = std::make_shared<ServerPeerStream>(std::move(events));
  stream->Begin(std::move(poster), std::move(on_accept));
  return stream.get();
}

}  // namespace qnet::daemon
