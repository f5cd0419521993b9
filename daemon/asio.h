// The one way daemon code includes Boost.Asio. Boost 1.74's awaitable.hpp uses
// std::exchange without including <utility>, which breaks under C++20 with
// GCC 12; including <utility> first fixes it. Never include <boost/asio...>
// directly elsewhere.
#pragma once

#include <utility>

#include <boost/asio.hpp>
