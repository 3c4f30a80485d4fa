// The schedulers by name, and selecting one (SetScheduler/GetScheduler over the service).
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dynamic_scheduler.h"
#include "pollux/scheduler/scheduler.h"
#include "scheduler_service.h"
#include "static_scheduler.h"

namespace pollux {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, SchedulerFactory, std::less<>> factories = {
      {"static", [](const SchedulerLimits&) { return std::make_unique<StaticScheduler>(); }},
      {"dynamic",
       [](const SchedulerLimits& limits) { return std::make_unique<DynamicScheduler>(limits); }},
  };
};

Registry& Get() {
  static Registry registry;
  return registry;
}

absl::Status CheckPercent(const char* name, uint32_t value) {
  if (value == 0 || value > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a percentage from 1 to 100, not ", value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterScheduler(std::string name, SchedulerFactory factory) {
  if (name.empty() || !factory) return absl::InvalidArgumentError("a scheduler needs a name and a factory");
  Registry& r = Get();
  std::lock_guard lock(r.mutex);
  if (!r.factories.emplace(name, std::move(factory)).second) {
    return absl::AlreadyExistsError(absl::StrCat("a scheduler named \"", name, "\" exists"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SchedulerNames() {
  Registry& r = Get();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

absl::Status SetScheduler(const SchedulerConfig& config) {
  SchedulerService* service = SchedulerService::Get();
  if (service == nullptr) return absl::FailedPreconditionError("the scheduler is not running");
  if (config.period_us == 0 || config.period_us > 60'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("period must be from 1 to 60000000 microseconds, not ", config.period_us));
  }
  for (auto [name, value] : {std::pair<const char*, uint32_t>{"load_limit", config.limits.load_limit},
                             {"core_limit", config.limits.core_limit},
                             {"core_busy", config.limits.core_busy}}) {
    if (absl::Status s = CheckPercent(name, value); !s.ok()) return s;
  }
  SchedulerFactory factory;
  {
    Registry& r = Get();
    std::lock_guard lock(r.mutex);
    auto it = r.factories.find(config.name);
    if (it == r.factories.end()) {
      std::vector<std::string> names;
      for (const auto& entry : r.factories) names.push_back(entry.first);
      return absl::InvalidArgumentError(absl::StrCat("unknown scheduler \"", config.name,
                                                     "\" (known: ", absl::StrJoin(names, ", "),
                                                     ")"));
    }
    factory = it->second;
  }
  std::unique_ptr<Scheduler> scheduler = factory(config.limits);
  if (scheduler == nullptr) {
    return absl::InternalError(absl::StrCat("scheduler \"", config.name, "\" failed to start"));
  }
  service->Select(config, std::move(scheduler));
  return absl::OkStatus();
}

SchedulerConfig GetScheduler() {
  SchedulerService* service = SchedulerService::Get();
  return service != nullptr ? service->config() : SchedulerConfig{};
}

}  // namespace pollux
