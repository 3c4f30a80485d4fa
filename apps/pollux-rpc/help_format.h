// pollux-rpc's help texts, from what the target's rpc_get_method_help answers (the same specs
// that check every call's parameters).
#pragma once

#include <string>
#include <string_view>

#include "pollux/rpc/json_rpc.h"

namespace pollux::rpc {

// `pollux-rpc METHOD --help`: the method's description, then its parameters (name, type,
// required / default, description), then SPDK's parameters it accepts without using them.
// `method` is one element of rpc_get_method_help's answer. Lines fit `width` columns where
// words allow.
std::string FormatMethodHelp(const Json& method, size_t width = 80);

// `pollux-rpc --help`'s list: the methods of `methods` (rpc_get_method_help's array) grouped
// by component, components sorted.
std::string FormatMethodList(const Json& methods, size_t width = 80);

}  // namespace pollux::rpc
