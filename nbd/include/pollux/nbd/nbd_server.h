// The NBD server: pollux bdevs exported over the network block device protocol (fixed newstyle
// handshake, structured replies) to any NBD client: qemu-img and qemu-io, qemu-nbd --connect,
// fio's nbd engine, nbdcopy, nbdinfo. One pollux thread serves each client (no OS thread per
// connection); see nbd/README.md.
//
// Threads: every function here runs on the app thread (RPC and config replay).
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

struct NbdServerOptions {
  std::string socket;                 // a Unix socket path; empty: TCP on address and port
  std::string address = "127.0.0.1";  // loopback unless told otherwise
  uint16_t port = 10809;              // NBD's registered port; 0 picks a free one
  uint32_t max_connections = 128;     // clients beyond it are refused, with a log line
};

// Listens. Fails when a server runs already, the address cannot be bound or the socket path
// belongs to something else (a stale socket left by a killed target is replaced). Returns
// where it listens: {"socket": path} or {"address": ..., "port": the bound port}.
absl::StatusOr<rpc::Json> StartNbdServer(const NbdServerOptions& options);

// Stops listening, removes every export and disconnects every client; done runs once they
// are all gone (FailedPrecondition when no server runs).
void StopNbdServer(absl::AnyInvocable<void(absl::Status)> done);

struct NbdExportOptions {
  std::string name;  // what clients ask for (NBD_OPT_GO); unique
  std::string bdev_name;
  std::string description;
  bool readonly = false;
};

// Exports a bdev. Needs a running server. Fails when the name is taken or the bdev is
// unknown. If the bdev goes away later, the export goes with it (and its clients).
absl::Status AddNbdExport(const NbdExportOptions& options);

// Removes an export and disconnects its clients (their I/O in flight completes first).
absl::Status RemoveNbdExport(const std::string& name);

// nbd_get_exports' answer: every export (or only `name`), with its connected clients.
absl::StatusOr<rpc::Json> GetNbdExports(const std::string& name);

// The nbd_server_start and nbd_export_add calls that recreate the server and its exports.
void WriteNbdConfig(rpc::Json& config);

}  // namespace pollux
