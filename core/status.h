// Error-propagation helpers over absl::Status / absl::StatusOr, used by every
// layer so that a failure carries a message a user can act on up to the edge.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QNET_CONCAT_INNER_(a, b) a##b
#define QNET_CONCAT_(a, b) QNET_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define QNET_RETURN_IF_ERROR(expr)                 \
  do {                                             \
    ::absl::Status qnet_status_ = (expr);          \
    if (!qnet_status_.ok()) return qnet_status_;   \
  } while (0)

// `lhs = value of expr` or return its error; expr is an absl::StatusOr<T>.
#define QNET_ASSIGN_OR_RETURN(lhs, expr) \
  QNET_ASSIGN_OR_RETURN_IMPL_(QNET_CONCAT_(qnet_statusor_, __LINE__), lhs, expr)
#define QNET_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
