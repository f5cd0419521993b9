// Lifetime: the one way protocol objects keep their own callbacks (timers,
// receivers, device completions) from running after they are gone.
//
// Protocol objects hand callbacks to things that may outlive them: the
// runtime's timers (NodeContext::StartTimer), a lower layer's receiver table,
// the device's completion queue. An object owns one Lifetime and wraps every
// such callback with Guard(); the wrapped callback does nothing once the
// Lifetime has ended (End() or its destructor). Objects whose destructors
// cancel work (and may so trigger callbacks) call End() first, so nothing
// they own runs against a half-destroyed object. Declare the Lifetime as the
// last member: it then ends before any other member is destroyed even where
// the destructor does not call End().
//
// Loop-thread only, like all protocol state: no locking.
#pragma once

#include <memory>
#include <utility>

namespace qnet {

class Lifetime {
 public:
  Lifetime() = default;
  ~Lifetime() { End(); }
  Lifetime(const Lifetime&) = delete;
  Lifetime& operator=(const Lifetime&) = delete;

  // From now on, every callback Guard() wrapped is a no-op. Idempotent.
  void End() { token_.reset(); }
  bool ended() const { return token_ == nullptr; }

  // `fn` wrapped so that it runs only while this Lifetime has not ended.
  // The wrapper takes the same arguments as `fn`; `fn` must return void.
  template <typename F>
  auto Guard(F fn) const {
    return [alive = std::weak_ptr<const Token>(token_), fn = std::move(fn)](auto&&... args) mutable {
      if (alive.expired()) return;
      fn(std::forward<decltype(args)>(args)...);
    };
  }

 private:
  struct Token {};
  std::shared_ptr<const Token> token_ = std::make_shared<const Token>();
};

}  // namespace qnet
