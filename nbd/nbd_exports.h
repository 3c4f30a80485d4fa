// The server's export table and connection list as the connections see them (nbd_server.cc
// owns both). A mutex guards them: only handshakes, RPC calls and connection ends take it,
// never a request.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pollux::nbd {

struct ExportEntry {
  std::string name;
  std::string bdev_name;
  std::string description;
  bool readonly = false;
};

// The export called `name`; "" names the only export when there is exactly one.
std::optional<ExportEntry> LookupExport(std::string_view name);
std::vector<std::string> ExportNames();
// Connection `id` now serves export `name`; false when that export was removed meanwhile.
bool BindConnection(uint64_t id, const std::string& name);
// Connection `id` ended (on its thread, before that thread exits).
void ConnectionEnded(uint64_t id);
// Ends connection `id` (NbdConnection::Kill) from a message to its thread, if it still lives
// when the message runs. Any thread.
void KillConnectionLater(uint64_t id, std::string reason);

}  // namespace pollux::nbd
