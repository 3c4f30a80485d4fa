// The vhost-user-blk target's registry: controllers by name (home thread) and by socket path
// and vid (rte_vhost's callbacks, which know only those), and the callbacks themselves.
#include <rte_vhost.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "pollux/virtio/vhost_blk.h"
#include "vhost_blk_controller.h"

namespace pollux {
namespace {

struct Registry {
  // Controllers by name: created and destroyed on the app thread.
  std::map<std::string, std::unique_ptr<VhostBlkController>, std::less<>> by_name;
  // What rte_vhost's thread looks controllers up by; guarded by `mutex` (lookups only).
  std::mutex mutex;
  std::map<std::string, VhostBlkController*, std::less<>> by_path;
  std::map<int, VhostBlkController*> by_vid;
  std::string socket_folder;
  // Shared queue threads by core, with the cpumask of each controller holding one (app
  // thread).
  struct SharedThread {
    Thread* thread;
    std::vector<std::vector<int>> masks;
  };
  std::map<int, SharedThread> threads;
};

Registry& Get() {
  static auto* registry = new Registry();
  return *registry;
}

VhostBlkController* ByVid(int vid) {
  Registry& r = Get();
  std::lock_guard lock(r.mutex);
  auto it = r.by_vid.find(vid);
  return it == r.by_vid.end() ? nullptr : it->second;
}

rte_vhost_msg_result MessageBefore(int vid, void* message) {
  VhostBlkController* c = ByVid(vid);
  return c != nullptr ? c->OnMessageBefore(vid, message) : RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

rte_vhost_msg_result MessageAfter(int vid, void* message) {
  VhostBlkController* c = ByVid(vid);
  return c != nullptr ? c->OnMessageAfter(vid, message) : RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

const rte_vhost_user_extern_ops kExternOps = {
    .pre_msg_handle = MessageBefore,
    .post_msg_handle = MessageAfter,
};

int NewConnection(int vid) {
  char path[PATH_MAX];
  if (rte_vhost_get_ifname(vid, path, sizeof(path)) != 0) return -1;
  Registry& r = Get();
  VhostBlkController* c = nullptr;
  {
    std::lock_guard lock(r.mutex);
    auto it = r.by_path.find(std::string_view(path));
    if (it != r.by_path.end()) c = it->second;
  }
  if (c == nullptr || c->OnNewConnection(vid) != 0) return -1;
  if (rte_vhost_extern_callback_register(vid, &kExternOps, nullptr) != 0) {
    PX_LOG(kError, "vhost", "%s: rte_vhost refused the message hooks", c->name());
    c->OnDestroyConnection(vid);
    return -1;
  }
  PX_LOG(kInfo, "vhost", "%s: front-end connected", c->name());
  std::lock_guard lock(r.mutex);
  r.by_vid[vid] = c;
  return 0;
}

void DestroyConnection(int vid) {
  VhostBlkController* c = ByVid(vid);
  if (c == nullptr) return;
  c->OnDestroyConnection(vid);
  PX_LOG(kInfo, "vhost", "%s: front-end disconnected", c->name());
  Registry& r = Get();
  std::lock_guard lock(r.mutex);
  r.by_vid.erase(vid);
}

int NewDevice(int vid) {
  VhostBlkController* c = ByVid(vid);
  return c != nullptr ? c->OnNewDevice(vid) : -1;
}

void DestroyDevice(int vid) {
  if (VhostBlkController* c = ByVid(vid)) c->OnDestroyDevice(vid);
}

int VringStateChanged(int vid, uint16_t vring, int enable) {
  if (VhostBlkController* c = ByVid(vid)) c->OnVringStateChanged(vid, vring, enable != 0);
  return 0;
}

const rte_vhost_device_ops kDeviceOps = [] {
  rte_vhost_device_ops ops{};
  ops.new_device = NewDevice;
  ops.destroy_device = DestroyDevice;
  ops.vring_state_changed = VringStateChanged;
  ops.new_connection = NewConnection;
  ops.destroy_connection = DestroyConnection;
  return ops;
}();

// Stops `controller` (off the registry's names already), forgets its socket path, frees it,
// then calls done. App thread.
void Retire(std::unique_ptr<VhostBlkController> controller, absl::AnyInvocable<void()> done) {
  VhostBlkController* raw = controller.release();
  raw->Shutdown([raw, done = std::move(done)]() mutable {
    {
      Registry& r = Get();
      std::lock_guard lock(r.mutex);
      // Unless a new controller took the path meanwhile (its name was free at once).
      auto it = r.by_path.find(raw->socket_path());
      if (it != r.by_path.end() && it->second == raw) r.by_path.erase(it);
    }
    delete raw;
    done();
  });
}

}  // namespace

const rte_vhost_device_ops* VhostDeviceOps() { return &kDeviceOps; }

namespace {

// The cores every mask allows (each mask is ascending and holds the thread's core).
std::vector<int> Intersection(const std::vector<std::vector<int>>& masks) {
  std::vector<int> cores = masks.front();
  for (const std::vector<int>& mask : masks) {
    std::vector<int> both;
    std::set_intersection(cores.begin(), cores.end(), mask.begin(), mask.end(),
                          std::back_inserter(both));
    cores = std::move(both);
  }
  return cores;
}

void NarrowCpumask(const Registry::SharedThread& shared) {
  std::vector<int> cores = Intersection(shared.masks);
  if (cores == shared.thread->cpumask()) return;
  if (absl::Status s = Thread::SetCpumask(shared.thread->id(), cores); !s.ok()) {
    PX_LOG(kWarning, "vhost", "cpumask of %s: %s", shared.thread->name(), s.message());
  }
}

}  // namespace

absl::StatusOr<Thread*> AcquireVhostThread(int cpu, const std::vector<int>& cpus) {
  auto& threads = Get().threads;
  auto it = threads.find(cpu);
  if (it != threads.end()) {
    it->second.masks.push_back(cpus);
    NarrowCpumask(it->second);
    return it->second.thread;
  }
  ThreadOptions options;
  options.cpu = cpu;
  options.cpumask = cpus;
  absl::StatusOr<Thread*> thread = Thread::Create(absl::StrFormat("vhost.core%d", cpu), options);
  if (!thread.ok()) return thread.status();
  threads[cpu] = {*thread, {cpus}};
  return *thread;
}

void ReleaseVhostThread(Thread* thread, const std::vector<int>& cpus) {
  auto& threads = Get().threads;
  for (auto it = threads.begin(); it != threads.end(); ++it) {
    if (it->second.thread != thread) continue;
    auto& masks = it->second.masks;
    auto mask = std::find(masks.begin(), masks.end(), cpus);
    if (mask != masks.end()) masks.erase(mask);
    if (masks.empty()) {
      threads.erase(it);
      (void)thread->SendMessage([thread] { thread->Exit(); });
    } else {
      NarrowCpumask(it->second);  // widens again, to what the remaining controllers allow
    }
    return;
  }
}

void SetVhostSocketFolder(std::string folder) {
  while (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  Get().socket_folder = std::move(folder);
}

const std::string& VhostSocketFolder() { return Get().socket_folder; }

absl::Status CreateVhostBlkController(const VhostBlkControllerOptions& options) {
  Registry& r = Get();
  if (options.name.empty()) return absl::InvalidArgumentError("ctrlr must not be empty");
  if (options.name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ctrlr \"%s\": a name, not a path (the socket goes in the socket folder, -S)",
        options.name));
  }
  if (r.by_name.count(options.name) != 0) {
    return absl::AlreadyExistsError(
        absl::StrFormat("controller \"%s\" already exists", options.name));
  }
  std::string path = r.socket_folder.empty() ? options.name : r.socket_folder + "/" + options.name;
  absl::StatusOr<std::unique_ptr<VhostBlkController>> c = VhostBlkController::Create(options, path);
  if (!c.ok()) return c.status();
  VhostBlkController* controller = c->get();
  {
    std::lock_guard lock(r.mutex);
    r.by_path[path] = controller;
  }
  r.by_name[options.name] = *std::move(c);
  if (absl::Status s = controller->Listen(); !s.ok()) {
    auto owned = std::move(r.by_name[options.name]);
    r.by_name.erase(options.name);
    Retire(std::move(owned), [] {});
    return s;
  }
  PX_LOG(kInfo, "vhost", "%s: serving bdev %s on %s", options.name, options.bdev_name, path);
  return absl::OkStatus();
}

void DeleteVhostBlkController(const std::string& name,
                              absl::AnyInvocable<void(absl::Status)> done) {
  Registry& r = Get();
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) {
    return done(absl::NotFoundError(absl::StrFormat("no controller \"%s\"", name)));
  }
  if (it->second->connected()) {
    return done(absl::FailedPreconditionError(absl::StrFormat(
        "controller \"%s\" has a connected front-end: stop the guest first", name)));
  }
  std::unique_ptr<VhostBlkController> owned = std::move(it->second);
  r.by_name.erase(it);
  Retire(std::move(owned), [done = std::move(done)]() mutable { done(absl::OkStatus()); });
}

absl::Status SetVhostCoalescing(const std::string& name, uint32_t delay_base_us,
                                uint32_t iops_threshold) {
  auto it = Get().by_name.find(name);
  if (it == Get().by_name.end()) {
    return absl::NotFoundError(absl::StrFormat("no controller \"%s\"", name));
  }
  if (delay_base_us > 1'000'000) {
    return absl::InvalidArgumentError("delay_base_us must be at most 1000000 (1 s)");
  }
  it->second->SetCoalescing(delay_base_us, iops_threshold);
  return absl::OkStatus();
}

void GetVhostControllers(const std::string& name,
                         absl::AnyInvocable<void(absl::StatusOr<rpc::Json>)> done) {
  Registry& r = Get();
  std::vector<VhostBlkController*> selected;
  for (auto& [n, c] : r.by_name) {
    if (name.empty() || n == name) selected.push_back(c.get());
  }
  if (!name.empty() && selected.empty()) {
    return done(absl::NotFoundError(absl::StrFormat("no controller \"%s\"", name)));
  }
  struct Gather {
    std::vector<VhostBlkController*> controllers;
    size_t next = 0;
    rpc::Json result = rpc::Json::array();
    absl::AnyInvocable<void(absl::StatusOr<rpc::Json>)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->controllers = std::move(selected);
  gather->done = std::move(done);
  auto step = std::make_shared<absl::AnyInvocable<void()>>();
  *step = [gather, step] {
    if (gather->next == gather->controllers.size()) {
      gather->done(std::move(gather->result));
      *step = nullptr;
      return;
    }
    gather->controllers[gather->next++]->Info([gather, step](rpc::Json info) {
      gather->result.push_back(std::move(info));
      (*step)();
    });
  };
  (*step)();
}

void WriteVhostBlkConfig(rpc::Json& config) {
  for (auto& [name, c] : Get().by_name) {
    const VhostBlkControllerOptions& o = c->options();
    rpc::Json params = {{"ctrlr", o.name},
                        {"dev_name", o.bdev_name},
                        {"readonly", o.readonly},
                        {"packed_ring", o.packed_ring}};
    if (!o.cpumask.empty()) params["cpumask"] = o.cpumask;
    if (o.socket_mode != 0600) params["socket_mode"] = absl::StrFormat("%04o", o.socket_mode);
    config.push_back({{"method", "vhost_create_blk_controller"}, {"params", std::move(params)}});
    if (c->coalescing_delay_us() != 0 || c->coalescing_iops_threshold() != 0) {
      config.push_back({{"method", "vhost_controller_set_coalescing"},
                        {"params",
                         {{"ctrlr", o.name},
                          {"delay_base_us", c->coalescing_delay_us()},
                          {"iops_threshold", c->coalescing_iops_threshold()}}}});
    }
  }
}

void DeleteAllVhostControllers(absl::AnyInvocable<void()> done) {
  Registry& r = Get();
  if (r.by_name.empty()) return done();
  auto remaining = std::make_shared<size_t>(r.by_name.size());
  auto finish = std::make_shared<absl::AnyInvocable<void()>>(std::move(done));
  auto controllers = std::move(r.by_name);
  r.by_name.clear();
  for (auto& [name, owned] : controllers) {
    Retire(std::move(owned), [remaining, finish] {
      if (--*remaining == 0) (*finish)();
    });
  }
}

}  // namespace pollux
