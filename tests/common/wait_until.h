// Waiting on the wall clock in tests: WaitUntil polls a condition and, when
// it gives up, says what it waited for and for how long; TimeoutFactor
// stretches every wall-clock timeout of the tests on a slow machine
// (QNET_TEST_TIMEOUT_FACTOR) and in the sanitizer build. See tests/README.md.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace qnet::testing {

#if defined(__SANITIZE_ADDRESS__)
#define QNET_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QNET_TEST_SANITIZED 1
#endif
#endif

// Daemons run several times slower under ASan+UBSan (docs/architecture.md,
// "Notes for developers"); the tests' timeouts are liveness bounds, so the
// default there leaves room rather than matching the slowdown.
#ifdef QNET_TEST_SANITIZED
inline constexpr double kDefaultTimeoutFactor = 3.0;
#else
inline constexpr double kDefaultTimeoutFactor = 1.0;
#endif

// QNET_TEST_TIMEOUT_FACTOR if set (a number >= 1; anything else stops the
// test binary, so a typo does not go unnoticed), else the build's default.
inline double TimeoutFactor() {
  static const double factor = [] {
    const char* text = std::getenv("QNET_TEST_TIMEOUT_FACTOR");
    if (text == nullptr || *text == '\0') return kDefaultTimeoutFactor;
    double value = 0;
    if (!absl::SimpleAtod(text, &value) || !(value >= 1.0)) {
      std::fprintf(stderr, "QNET_TEST_TIMEOUT_FACTOR must be a number >= 1, got '%s'\n", text);
      std::exit(2);
    }
    return value;
  }();
  return factor;
}

// A wall-clock timeout or deadline of a test, stretched by the factor.
// Simulated durations (a session's timeout_s) are not wall-clock waits.
inline std::chrono::milliseconds Scaled(std::chrono::milliseconds timeout) {
  return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(timeout.count()) * TimeoutFactor()));
}
inline absl::Duration Scaled(absl::Duration timeout) { return timeout * TimeoutFactor(); }

// Polls `condition` on the calling thread every `poll` until it holds or
// `timeout` (stretched by the factor) passes. Liveness only: tests assert on
// the outcome, not on how long it took. Use as
//   ASSERT_TRUE(WaitUntil("bob sees charlie down", [&] { ... }));
// so a failure reads "gave up waiting for bob sees charlie down after 15 s".
inline ::testing::AssertionResult WaitUntil(std::string_view what, const std::function<bool()>& condition,
                                            std::chrono::milliseconds timeout = std::chrono::seconds(15),
                                            std::chrono::milliseconds poll = std::chrono::milliseconds(10)) {
  const std::chrono::milliseconds limit = Scaled(timeout);
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) {
      std::string factor = TimeoutFactor() == 1.0 ? "" : absl::StrCat(" (", TimeoutFactor(), " x ", timeout.count(), " ms)");
      return ::testing::AssertionFailure() << "gave up waiting for " << what << " after "
                                           << absl::FormatDuration(absl::FromChrono(limit)) << factor;
    }
    std::this_thread::sleep_for(poll);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace qnet::testing
