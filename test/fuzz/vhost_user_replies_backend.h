// The back-end that fuzz_vhost_user_replies plays: a vhost-user back-end on a Unix socket whose
// every answer the input chooses. It accepts one connection and reads the front-end's requests
// one by one; for each it takes the input's next action (the reply owed, any message at all, a
// reply carrying a file descriptor, half a reply, a closed connection...). It also answers the
// GET_ID request the initiator puts on queue 0's ring at attach, as the input's header says.
//
// It checks what the front-end sends, and aborts (a finding) when the front-end breaks a rule:
// every request well-formed (version, flags, payload size, file descriptors); in attach mode
// also consistent with what the back-end answered (features and protocol features taken only
// when offered, acks asked for exactly when REPLY_ACK was agreed, queue indexes, sizes and
// bases as the options say, rings inside the memory table, GET_ID a proper request).
//
// No action leaves the front-end waiting: a reply owed is always sent, cut short or replaced
// by the end of the connection. So the front-end's reply timeout never expires unless it
// waits for something nobody owes it.
//
// Test code: one plain thread per connection, blocking sockets. The input's header is parsed
// by the caller; the thread owns the rest of the input.
#pragma once

#include <cstdint>
#include <string>
#include <thread>

#include "fuzz_input.h"

namespace pollux::fuzz {

// Prints `what` and aborts: a finding (libFuzzer keeps the input).
[[noreturn]] void Finding(const std::string& what);

// How the back-end answers GET_ID (the input's header).
struct GetIdAnswer {
  uint8_t mode = 0;     // 0: completes the request (status, length, serial); 1: a used entry
  uint8_t status = 0;   // mode 0: the status byte written
  uint32_t length = 0;  // the used length
  uint16_t id = 0;      // mode 1: the used id
  uint16_t extra = 0;   // mode 1: split: the used index (at least 1); packed: flags added
  uint8_t serial[20] = {};
};

struct BackendOptions {
  bool attach_mode = true;  // the requests are the controller's attach and stop sequence
  bool packed_asked = false;
  uint32_t vq_count = 1;
  uint32_t vq_size = 2;
  GetIdAnswer get_id;
};

// What the back-end offered and did, for the caller's checks once the thread ended. The
// "offered" values are unions over every message sent that the front-end could have taken
// for that reply (a message it did not ask for may be read as the answer to a later request).
struct BackendRecord {
  uint64_t offered_features = 0;
  uint64_t offered_protocol_features = 0;
  bool queue_num_asked = false;
  uint64_t max_queue_num = 0;
  bool get_id_completed = false;  // mode 0 answered GET_ID
  uint32_t requests = 0;
};

class FuzzBackend {
 public:
  // Listens on `path` (removed again by the destructor) and serves one connection on a thread
  // of its own, answering with `input`.
  FuzzBackend(std::string path, const BackendOptions& options, FuzzInput input);
  ~FuzzBackend();
  FuzzBackend(const FuzzBackend&) = delete;
  FuzzBackend& operator=(const FuzzBackend&) = delete;

  // Ends the thread wherever it is and closes every fd it holds. The record is final after.
  void Stop();
  const BackendRecord& record() const { return record_; }

 private:
  struct Received;
  void Run();
  // One request from the connection; false when it closed (or, when `drain`, had nothing).
  bool ReadRequest(Received& request, bool drain);
  // Checks a request and keeps what the GET_ID answer needs (memory, queue 0's ring).
  void Check(Received& request);
  void CheckAttachStep(const Received& request);
  void Act(const Received& request);
  // The reply to `request`: what it owes (its value from the input), or else an ack.
  std::string Reply(const Received& request);
  // Sends one message; a complete one that the front-end could take for a reply is recorded.
  void SendMessage(const std::string& bytes, bool with_fd);
  // Shuts the connection both ways, reads and checks what the front-end had sent (so that a
  // front-end that got through its requests finds GET_ID answered), then closes it.
  void CloseConnection();
  void AnswerGetId();
  void AnswerGetIdSplit();
  void AnswerGetIdPacked();
  // A descriptor of GET_ID's chain, in either layout.
  struct Buffer {
    uint64_t address;
    uint32_t length;
    bool device_writes;
  };
  void CompleteGetId(const Buffer* chain, size_t count);
  // The pointer for [address, address + length) of the front-end's memory, by its virtual
  // address (rings) or by the address descriptors carry; aborts when outside the region.
  uint8_t* Memory(uint64_t address, uint64_t length, const char* what) const;
  uint8_t* Guest(uint64_t address, uint64_t length, const char* what) const;

  const std::string path_;
  const BackendOptions options_;
  FuzzInput input_;
  BackendRecord record_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  int connection_ = -1;
  bool can_write_ = true;  // false once the back-end shut its sending side
  // What the front-end set up (attach mode): memory, queue 0's ring and its eventfds.
  bool protocol_set_ = false;
  uint64_t protocol_features_ = 0;  // what SET_PROTOCOL_FEATURES said
  uint64_t features_ = 0;           // what SET_FEATURES said
  bool memory_known_ = false;
  uint64_t memory_guest_ = 0;  // the region's guest_phys_addr (what descriptors carry)
  uint64_t memory_start_ = 0;  // its userspace_addr (what ring addresses are)
  uint64_t memory_size_ = 0;
  uint32_t ring_size_ = 0;
  uint64_t desc_ = 0, driver_ = 0, device_ = 0;  // queue 0's ring parts
  bool ring_known_ = false;
  int kick_fd_ = -1;
  int call_fd_ = -1;
  bool get_id_answered_ = false;
  std::thread thread_;
};

}  // namespace pollux::fuzz
