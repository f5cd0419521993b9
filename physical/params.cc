#include "physical/params.h"

namespace qnet::physical {

std::string_view SchemeName(HeraldingScheme s) {
  switch (s) {
    case HeraldingScheme::kSingleClick:
      return "single-click";
    case HeraldingScheme::kDoubleClick:
      return "double-click";
    case HeraldingScheme::kWerner:
      return "werner";
  }
  return "unknown";
}

}  // namespace qnet::physical
