// Components and modules register names (RPC methods, subsystems, bdev modules) from static
// constructors, which run when their library loads. A clash in pollux's own libraries is a
// build mistake: the process stops with a message. In a plugin being loaded it is the plugin's
// fault: the loader collects what the plugin registered and what clashed
// (StaticRegistrationCollector) and refuses the plugin on a clash.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pollux {

// What registrars call `kind` ("bdev module", "RPC method", "subsystem").
inline constexpr char kBdevModuleRegistration[] = "bdev module";
inline constexpr char kRpcMethodRegistration[] = "RPC method";
inline constexpr char kSubsystemRegistration[] = "subsystem";

struct StaticRegistration {
  std::string kind;
  std::string name;
};

// A registration from a static constructor succeeded.
void NoteStaticRegistration(std::string_view kind, std::string_view name);
// One failed: `message` says what clashed. Aborts unless a StaticRegistrationCollector is alive
// on this thread, which then keeps the message.
void ReportStaticRegistrationError(std::string message);

// While alive, static registrations on the creating thread are recorded, and their errors kept
// instead of aborting. Not nestable.
class StaticRegistrationCollector {
 public:
  StaticRegistrationCollector();
  ~StaticRegistrationCollector();
  StaticRegistrationCollector(const StaticRegistrationCollector&) = delete;
  StaticRegistrationCollector& operator=(const StaticRegistrationCollector&) = delete;

  const std::vector<StaticRegistration>& registered() const { return registered_; }
  const std::vector<std::string>& errors() const { return errors_; }
  // The names registered as `kind`.
  std::vector<std::string> Names(std::string_view kind) const;

 private:
  friend void NoteStaticRegistration(std::string_view kind, std::string_view name);
  friend void ReportStaticRegistrationError(std::string message);
  std::vector<StaticRegistration> registered_;
  std::vector<std::string> errors_;
};

}  // namespace pollux
