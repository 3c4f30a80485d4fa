// Private to rpc. Debian 12's Abseil is built with its own absl::string_view
// (ABSL_OPTION_USE_STD_STRING_VIEW is 0), to which std::string_view does not convert. The rpc
// API speaks std::string_view; AbslView() hands such text to absl::StrCat and absl::Status.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace pollux::rpc {

inline absl::string_view AbslView(std::string_view text) { return {text.data(), text.size()}; }

}  // namespace pollux::rpc
