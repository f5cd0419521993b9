// One Peer.Exchange stream to a neighbour, seen from either end: the dialer's
// gRPC client reactor or the acceptor's server reactor. A PeerStream is
// thread-safe and shared: gRPC holds it until the call is done, the loop
// holds it while the link uses it. Everything it learns (a frame read, the
// stream ending) is posted into the event loop; nothing here touches
// protocol state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>

#include "daemon/event_loop.h"
#include "daemon/frame_queue.h"
#include "qnet/v1/peer_service.grpc.pb.h"

namespace qnet::daemon {

// Counts gRPC calls whose callbacks may still post into a loop, so shutdown
// can wait until none are left. Thread-safe.
class CallCounter {
 public:
  void Add();
  void Done();
  // True if the count reached zero within `timeout`.
  bool WaitForZero(WallClock::duration timeout);
  int count();

 private:
  std::mutex mu_;
  std::condition_variable zero_;
  int count_ = 0;
};

class PeerStream;
using PeerStreamPtr = std::shared_ptr<PeerStream>;

// Where a stream reports, always on the loop (through `poster`).
struct PeerStreamEvents {
  std::shared_ptr<LoopPoster> poster;
  // `arrived`: when the frame was read (the loop may run it later).
  std::function<void(PeerStreamPtr, v1::PeerFrame, WallClock::time_point arrived)> on_frame;
  std::function<void(PeerStreamPtr, grpc::Status)> on_closed;
  std::shared_ptr<CallCounter> calls;
};

class PeerStream : public std::enable_shared_from_this<PeerStream> {
 public:
  virtual ~PeerStream() = default;

  // Dials `channel`'s Peer service. The caller sends the Hello.
  static PeerStreamPtr Dial(std::shared_ptr<grpc::Channel> channel, PeerStreamEvents events);
  // The reactor for an incoming Exchange call (the service returns it). It
  // takes raw bytes: a frame that does not parse ends the stream with
  // INVALID_ARGUMENT (the typed API would end it with OK).
  static grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Accept(grpc::CallbackServerContext* context,
                                                                     PeerStreamEvents events,
                                                                     std::function<void(PeerStreamPtr)> on_accept);

  // Queues a frame (merged with queued batches where possible). Dropped once
  // the stream is closing or ended. Thread-safe.
  void Send(v1::PeerFrame frame);
  // Flushes queued frames (after a Goodbye, if `goodbye_reason` is not
  // empty), then ends the stream cleanly. Thread-safe.
  void Close(std::string goodbye_reason);
  // Ends the stream now, dropping queued frames. Thread-safe.
  virtual void Abort(grpc::Status status) = 0;

  bool dialed() const { return dialed_; }
  uint64_t id() const { return id_; }
  // Frames and batched messages handed to gRPC so far.
  uint64_t frames_written() const { return frames_written_.load(); }
  uint64_t messages_written() const { return messages_written_.load(); }

 protected:
  PeerStream(bool dialed, PeerStreamEvents events);

  // Subclass hooks, called without mu_ held.
  virtual void StartWriteFrame(const v1::PeerFrame* frame) = 0;
  // Closing and drained: client half-closes (unless the server already
  // ended the call), server finishes with finish_status_.
  virtual void EndStream(bool reads_ended) = 0;
  // Once reads have ended and no write is in flight (client: release the
  // hold that kept the call open).
  virtual void WrapUp() {}

  // Shared reactor logic.
  void HandleReadDone(bool ok, v1::PeerFrame* frame);
  void HandleWriteDone(bool ok);
  void HandleDone(grpc::Status status);
  // Starts the next write, or ends the stream when closing and drained.
  void Pump();

  std::mutex mu_;
  FrameQueue queue_;
  bool closing_ = false;   // no more frames accepted
  bool ended_ = false;     // EndStream called
  bool reads_ended_ = false;
  bool write_failed_ = false;
  bool wrapped_up_ = false;
  PeerStreamPtr self_;     // keeps the stream alive until gRPC is done with it

 private:
  const bool dialed_;
  const uint64_t id_;
  PeerStreamEvents events_;
  std::atomic<uint64_t> frames_written_{0};
  std::atomic<uint64_t> messages_written_{0};
};

}  // namespace qnet::daemon
