// fuzz_rpc_seeds DIR: writes corpus/rpc's seeds, one file per registered method
// (method-<name>.jsonl): a malloc bdev created, then the method called with every parameter
// given an example of its type. `--check DIR` instead fails when a method has no seed there,
// so that a new method joins the fuzzing (CTest runs the check).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/method_spec.h"

namespace {

using pollux::rpc::Json;
using pollux::rpc::ParamSpec;
using pollux::rpc::ParamType;

// A value the parameter could take: names of the tree's usual kinds, else one of its type.
Json Example(const ParamSpec& param) {
  if (!param.default_value.empty()) return Json::parse(param.default_value);
  const std::string& name = param.name;
  switch (param.type) {
    case ParamType::kString:
      if (name == "uuid") return "0b4f3a1e-5c3d-4e2f-8a1b-2c3d4e5f6a7b";
      if (name.find("mask") != std::string::npos) return "0x1";
      if (name == "filename" || name.find("path") != std::string::npos) return "/dev/null";
      return "Malloc0";
    case ParamType::kUnsigned:
    case ParamType::kInteger:
      if (name == "block_size") return 512;
      if (name == "num_blocks") return 64;
      return 1;
    case ParamType::kBoolean:
      return true;
    case ParamType::kObject:
      return Json::object();
    case ParamType::kArray:
      return Json::array();
    case ParamType::kAny:
      return "Malloc0";
  }
  return nullptr;
}

std::string SeedName(const std::string& method) { return "method-" + method + ".jsonl"; }

std::string Seed(const pollux::rpc::MethodSpec& spec) {
  Json create = {{"jsonrpc", "2.0"},
                 {"id", 1},
                 {"method", "bdev_malloc_create"},
                 {"params", {{"name", "Malloc0"}, {"num_blocks", 64}, {"block_size", 512}}}};
  Json params = Json::object();
  for (const ParamSpec& param : spec.params) {
    if (param.use == pollux::rpc::ParamUse::kUsed) params[param.name] = Example(param);
  }
  Json call = {{"jsonrpc", "2.0"}, {"id", 2}, {"method", spec.name}, {"params", params}};
  return create.dump() + "\n" + call.dump() + "\n";
}

}  // namespace

int main(int argc, char** argv) {
  const bool check = argc == 3 && std::string(argv[1]) == "--check";
  if (argc != 2 && !check) {
    std::fprintf(stderr, "usage: %s [--check] DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[argc - 1];
  int missing = 0;
  for (const pollux::rpc::MethodSpec& spec : pollux::rpc::MethodRegistry::Global().Specs()) {
    const std::filesystem::path file = dir / SeedName(spec.name);
    if (check) {
      if (!std::filesystem::exists(file)) {
        std::fprintf(stderr, "no seed for %s: run fuzz_rpc_seeds %s\n", spec.name.c_str(),
                     dir.c_str());
        ++missing;
      }
      continue;
    }
    std::ofstream(file) << Seed(spec);
  }
  return missing == 0 ? 0 : 1;
}
