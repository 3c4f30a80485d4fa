// Messages between threads: the per-Thread MPSC ring (Mailbox) seen through Thread's API.
// Per-sender order, no loss under many producers (reactor Threads and plain OS threads),
// bursts, a full ring, and the closure form of SendMessage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rte_pause.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

// Counts allocations made by the calling OS thread, to check that the small closure form of
// SendMessage travels inline in the ring. Not under clang's TSan, whose static runtime defines
// operator new itself (the counting tests are skipped there).
namespace {
thread_local uint64_t t_allocations = 0;
#if defined(POLLUX_TSAN_BUILD)
constexpr bool kCountsAllocations = false;
#else
constexpr bool kCountsAllocations = true;
#endif
}  // namespace

#if !defined(POLLUX_TSAN_BUILD)
// The replacement pair is malloc/free on both sides; GCC cannot see that across the two.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  ++t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
#endif

namespace pollux::testing {
namespace {

// ---- numbered messages: arg = sender << 40 | sequence ----

constexpr int kSequenceBits = 40;

void* Encode(uint64_t sender, uint64_t seq) {
  return reinterpret_cast<void*>((sender << kSequenceBits) | seq);
}

// What the receiving Thread saw. Written only by the receiver (one consumer), read by the test
// thread after `received` says everything arrived, and by senders that wait for their messages.
struct Received {
  explicit Received(size_t senders) : next(senders) {}
  // The sequence number expected next from each sender (= how many of its messages ran).
  std::vector<std::atomic<uint64_t>> next;
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> out_of_order{0};
  std::string first_error;
};

Received* g_received = nullptr;

void OnNumbered(void* arg) {
  auto value = reinterpret_cast<uint64_t>(arg);
  uint64_t sender = value >> kSequenceBits;
  uint64_t seq = value & ((uint64_t{1} << kSequenceBits) - 1);
  Received& r = *g_received;
  if (sender >= r.next.size() || seq != r.next[sender].load(std::memory_order_relaxed)) {
    if (r.out_of_order.fetch_add(1, std::memory_order_relaxed) == 0) {
      r.first_error = "sender " + std::to_string(sender) + ": got " + std::to_string(seq) +
                      ", expected " +
                      (sender < r.next.size() ? std::to_string(r.next[sender].load()) : "no sender");
    }
  }
  r.received.fetch_add(1, std::memory_order_release);
  if (sender < r.next.size()) r.next[sender].store(seq + 1, std::memory_order_release);
}

// A sender running on a reactor Thread: an active poller that sends up to `per_poll` messages
// per call, stops at the first full ring (the receiver may share its reactor, so it must not
// spin), and unregisters itself when done.
struct PollerSender {
  Poller* self = nullptr;
  uint64_t id;
  uint64_t count;
  uint64_t seq = 0;
  uint64_t full = 0;  // times the ring was full
  bool burst;
};

void StartPollerSender(Thread* on, Thread* to, std::shared_ptr<PollerSender> sender) {
  RunOn(on, [on, to, sender] {
    sender->self = on->RegisterPoller("sender", [to, sender] {
      unsigned sent = 0;
      if (sender->burst) {
        Message batch[24];
        unsigned n = 0;
        while (n < 24 && sender->seq + n < sender->count) {
          batch[n] = Message{&OnNumbered, Encode(sender->id, sender->seq + n)};
          ++n;
        }
        sent = to->SendMessages(batch, n);
        sender->seq += sent;
        if (sent < n) ++sender->full;
      } else {
        while (sent < 64 && sender->seq < sender->count) {
          if (!to->SendMessage(&OnNumbered, Encode(sender->id, sender->seq))) {
            ++sender->full;
            break;
          }
          ++sender->seq;
          ++sent;
        }
      }
      if (sender->seq == sender->count) sender->self->Unregister();
      return sent != 0 ? PollResult::kBusy : PollResult::kIdle;
    });
  });
}

// A sender on a plain OS thread: retries while the ring is full, sleeping in between. Only
// yielding would be much slower: the receiver may be waiting for a sender that was preempted
// in the middle of its enqueue (its slot not yet published), and with every OS sender
// spinning on yield() that sender waits long for a core.
void OsSender(Thread* to, uint64_t id, uint64_t count, bool burst, std::atomic<uint64_t>* full) {
  uint64_t seq = 0;
  uint64_t local_full = 0;
  while (seq < count) {
    bool ok;
    if (burst) {
      Message batch[16];
      unsigned n = 0;
      while (n < 16 && seq + n < count) {
        batch[n] = Message{&OnNumbered, Encode(id, seq + n)};
        ++n;
      }
      unsigned sent = to->SendMessages(batch, n);
      seq += sent;
      ok = sent == n;
    } else {
      ok = to->SendMessage(&OnNumbered, Encode(id, seq));
      if (ok) ++seq;
    }
    if (!ok) {
      ++local_full;
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  full->fetch_add(local_full);
}

class MailboxTest : public ModeTest {
 protected:
  MailboxTest() { spin_window_ = std::chrono::microseconds(20); }
  void TearDown() override {
    // After the runtime: stopping it runs the messages still queued.
    ReactorTest::TearDown();
    g_received = nullptr;
    received_.reset();
  }

  // Runs `os_senders` OS threads and a poller sender on each of `reactor_senders` Threads
  // (spread over both reactors), each sending `per_sender` numbered messages to one receiver,
  // and checks that every message arrived, each sender's in order.
  void RunSenders(int os_senders, uint64_t os_per_sender, int reactor_senders,
                  uint64_t reactor_per_sender, uint32_t receiver_ring, bool burst) {
#if defined(POLLUX_TSAN_BUILD)
    // ThreadSanitizer runs this 10-20 times slower: the same interleavings, fewer of them.
    os_per_sender = std::max<uint64_t>(1, os_per_sender / 20);
    reactor_per_sender = std::max<uint64_t>(1, reactor_per_sender / 20);
#endif
    Thread* receiver = CreateThread("receiver", 0, receiver_ring);
    received_ = std::make_unique<Received>(os_senders + reactor_senders);
    Received& received = *received_;
    g_received = &received;
    uint64_t total = os_senders * os_per_sender + reactor_senders * reactor_per_sender;

    std::vector<Thread*> sender_threads;
    std::vector<std::shared_ptr<PollerSender>> poller_senders;
    for (int i = 0; i < reactor_senders; ++i) {
      Thread* t = CreateThread("sender" + std::to_string(i), i % 2);
      sender_threads.push_back(t);
      auto s = std::make_shared<PollerSender>();
      s->id = os_senders + i;
      s->count = reactor_per_sender;
      s->burst = burst;
      poller_senders.push_back(s);
      StartPollerSender(t, receiver, s);
    }
    std::atomic<uint64_t> os_full{0};
    std::vector<std::thread> os_threads;
    for (int i = 0; i < os_senders; ++i) {
      os_threads.emplace_back(OsSender, receiver, i, os_per_sender, burst, &os_full);
    }
    for (auto& t : os_threads) t.join();

    bool all = WaitUntil([&] { return received.received.load(std::memory_order_acquire) == total; },
                         std::chrono::seconds(60));
    EXPECT_TRUE(all) << "received " << received.received.load() << " of " << total;
    uint64_t reactor_full = 0;
    for (size_t i = 0; i < sender_threads.size(); ++i) {
      // Read the poller sender's counters on its own thread.
      reactor_full += CallOn(sender_threads[i], [&] { return poller_senders[i]->full; });
    }
    EXPECT_EQ(received.out_of_order.load(), 0u) << received.first_error;
    if (all) {
      for (size_t s = 0; s < received.next.size(); ++s) {
        uint64_t expected = static_cast<int>(s) < os_senders ? os_per_sender : reactor_per_sender;
        EXPECT_EQ(received.next[s].load(), expected) << "sender " << s;
      }
    }
    RecordProperty("ring_full_os", std::to_string(os_full.load()));
    RecordProperty("ring_full_reactor", std::to_string(reactor_full));
    for (Thread* t : sender_threads) ExitThread(t);
    ExitThread(receiver);
    EXPECT_EQ(received.received.load(), total) << "messages ran after the check";
  }

  std::unique_ptr<Received> received_;
};

// Several senders, reactor and OS, each numbering its messages into a small ring so that the
// ring is often full: each sender's sequence arrives in order, none is lost.
TEST_P(MailboxTest, PerSenderOrderThroughAFullRing) {
  RunSenders(/*os_senders=*/3, /*os_per_sender=*/100'000, /*reactor_senders=*/3,
             /*reactor_per_sender=*/100'000, /*receiver_ring=*/256, /*burst=*/false);
}

// The same with SendMessages bursts, which may be accepted in part.
TEST_P(MailboxTest, PerSenderOrderWithBursts) {
  RunSenders(3, 100'000, 3, 100'000, 256, /*burst=*/true);
}

// Millions of messages from 4 OS threads and 2 reactor Threads into the default-size ring.
TEST_P(MailboxTest, NoLossUnderManyProducers) {
  RunSenders(4, 500'000, 2, 500'000, 65536, /*burst=*/false);
}
INSTANTIATE_TEST_SUITE_P(Modes, MailboxTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) { return std::string(ReactorModeName(info.param)); });

// ---- reactor senders and OS-thread senders into one sleeping receiver ----

// Senders on reactors go through the mailbox's MP ring, every other thread through its RTS ring
// (reactor/mailbox.h); the receiver's reactor drains both and sleeps on one eventfd, and the
// two rings have different wake-up checks. Here senders of both kinds send short batches (one
// message or a SendMessages burst), each waiting until its previous batch ran before sending
// the next, with pauses, so that the receiver's reactor (interrupt mode, no spin window) falls
// asleep again and again and is woken through either ring, or both at once. A lost wake-up
// stalls the senders (each OS sender gives up after 10 s); every sender's messages arrive, in
// order.
class MailboxInterruptTest : public ReactorTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override {
    ReactorRuntimeOptions options;
    options.mode = ReactorMode::kInterrupt;
    options.spin_window = std::chrono::microseconds(0);
    return options;
  }
  void TearDown() override {
    ReactorTest::TearDown();
    g_received = nullptr;
    received_.reset();
  }
  std::unique_ptr<Received> received_;
};

// Sends messages id<<40|seq .. seq+n-1 (n = 1: SendMessage, else SendMessages, retried until
// all went) and returns n.
unsigned SendBatch(Thread* to, uint64_t id, uint64_t seq, unsigned n) {
  if (n == 1) {
    while (!to->SendMessage(&OnNumbered, Encode(id, seq))) rte_pause();
    return 1;
  }
  Message batch[8];
  for (unsigned i = 0; i < n; ++i) batch[i] = Message{&OnNumbered, Encode(id, seq + i)};
  for (unsigned sent = 0; sent < n;) {
    unsigned k = to->SendMessages(batch + sent, n - sent);
    if (k == 0) rte_pause();
    sent += k;
  }
  return n;
}

// A sender on a reactor Thread: a timed poller that sends the next batch once the previous one
// ran, and unregisters itself when all ran.
struct PacedReactorSender {
  Poller* self = nullptr;
  uint64_t id;
  uint64_t count;
  uint64_t seq = 0;
  uint32_t random;
};

TEST_F(MailboxInterruptTest, ReactorAndOsSendersIntoASleepingReceiver) {
  constexpr int kOsSenders = 2;
  constexpr uint64_t kOsMessages = 15'000;
  constexpr uint64_t kReactorMessages = 10'000;
  // Receiver on reactor 1; a reactor sender on each reactor (reactor 1's sends are local).
  Thread* receiver = CreateThread("receiver", 1);
  received_ = std::make_unique<Received>(kOsSenders + 2);
  g_received = received_.get();
  Received& received = *received_;
  uint64_t total = kOsSenders * kOsMessages + 2 * kReactorMessages;
  uint64_t sleeps_before = Info(1).sleeps;

  std::vector<Thread*> sender_threads;
  for (int r = 0; r < 2; ++r) {
    Thread* t = CreateThread("paced" + std::to_string(r), r);
    sender_threads.push_back(t);
    auto sender = std::make_shared<PacedReactorSender>();
    sender->id = kOsSenders + r;
    sender->count = kReactorMessages;
    sender->random = 17 + r;
    PollerOptions options;
    // Reactor 1's sender wakes its reactor rarely, so that the receiver's wake-ups come from
    // the other senders.
    options.period = std::chrono::microseconds(r == 0 ? 20 : 500);
    RunOn(t, [t, receiver, sender, &received, options = std::move(options)]() mutable {
      sender->self = t->RegisterPoller(
          "paced_sender",
          [receiver, sender, &received] {
            PacedReactorSender& s = *sender;
            if (received.next[s.id].load(std::memory_order_acquire) != s.seq) {
              return PollResult::kIdle;  // the previous batch has not run yet
            }
            if (s.seq == s.count) {
              s.self->Unregister();
              return PollResult::kIdle;
            }
            s.random = s.random * 1103515245 + 12345;
            unsigned n = static_cast<unsigned>(std::min<uint64_t>(1 + (s.random >> 16) % 8,
                                                                  s.count - s.seq));
            s.seq += SendBatch(receiver, s.id, s.seq, n);
            return PollResult::kBusy;
          },
          std::move(options));
    });
  }

  std::atomic<int> stalled{0};
  std::vector<std::thread> os_threads;
  for (int i = 0; i < kOsSenders; ++i) {
    os_threads.emplace_back([&, i] {
      std::mt19937 random(i);
      for (uint64_t seq = 0; seq < kOsMessages && stalled.load() == 0;) {
        switch (random() % 4) {
          case 0:  // at once: races the receiver's arming
            break;
          case 1:
            std::this_thread::yield();
            break;
          default:  // long enough for the receiver to fall asleep
            std::this_thread::sleep_for(std::chrono::microseconds(random() % 50));
            break;
        }
        unsigned n = static_cast<unsigned>(std::min<uint64_t>(1 + random() % 8, kOsMessages - seq));
        seq += SendBatch(receiver, i, seq, n);
        if (!WaitUntil([&] { return received.next[i].load(std::memory_order_acquire) == seq; },
                       std::chrono::seconds(10))) {
          stalled.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : os_threads) t.join();
  EXPECT_EQ(stalled.load(), 0) << "an OS sender's batch did not run within 10 s: lost wake-up";

  bool all = WaitUntil([&] { return received.received.load(std::memory_order_acquire) == total; },
                       std::chrono::seconds(30));
  EXPECT_TRUE(all) << "received " << received.received.load() << " of " << total;
  EXPECT_EQ(received.out_of_order.load(), 0u) << received.first_error;
  for (int s = 0; s < kOsSenders + 2; ++s) {
    EXPECT_EQ(received.next[s].load(), s < kOsSenders ? kOsMessages : kReactorMessages)
        << "sender " << s;
  }
  uint64_t sleeps = Info(1).sleeps - sleeps_before;
  RecordProperty("receiver_reactor_sleeps", std::to_string(sleeps));
  EXPECT_GT(sleeps, 0u) << "the receiver's reactor never slept: the test did not test wake-ups";
  if (!all || stalled.load() != 0) return;  // TearDown stops the runtime anyway
  for (Thread* t : sender_threads) ExitThread(t);
  ExitThread(receiver);
}

class MailboxClosureTest : public ReactorTest {};

// A full ring refuses a message and queues nothing; a refused boxed closure is freed.
TEST_F(MailboxClosureTest, FullRingRefusesAndQueuesNothing) {
  Thread* receiver = CreateThread("receiver", 0, /*ring_size=*/64);
  // Hold the receiver's reactor inside a message so that nothing drains the ring.
  std::atomic<bool> inside{false}, release{false};
  ASSERT_TRUE(receiver->SendMessage([&inside, &release] {
    inside = true;
    while (!release.load()) rte_pause();
  }));
  ASSERT_TRUE(WaitUntil([&] { return inside.load(); }));

  std::atomic<int> ran{0};
  int accepted = 0;
  while (receiver->SendMessage([&ran] { ran.fetch_add(1); })) ++accepted;
  EXPECT_EQ(accepted, 63);  // a 64-entry ring holds 63
  Message one{[](void*) {}, nullptr};
  EXPECT_FALSE(receiver->SendMessage(one.fn, one.arg));
  EXPECT_EQ(receiver->SendMessages(&one, 1), 0u);

  auto token = std::make_shared<int>(7);
  std::string big(100, 'x');
  EXPECT_FALSE(receiver->SendMessage([token, big] { (void)*token; }));
  EXPECT_EQ(token.use_count(), 1) << "a refused boxed closure was not freed";

  release = true;
  ASSERT_TRUE(WaitUntil([&] { return ran.load() == accepted; }));
  RunOn(receiver, [] {});
  EXPECT_EQ(ran.load(), accepted);
  ExitThread(receiver);
}

// A trivially copyable pointer-sized closure travels inline: sending allocates nothing.
TEST_F(MailboxClosureTest, SmallClosureIsInline) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocations are not counted in this build";
  Thread* receiver = CreateThread("receiver");
  std::atomic<int> ran{0};
  std::atomic<int>* counter = &ran;
  uint64_t before = t_allocations;
  for (int i = 0; i < 1000; ++i) {
    while (!receiver->SendMessage([counter] { counter->fetch_add(1); })) rte_pause();
  }
  uint64_t allocations = t_allocations - before;
  EXPECT_EQ(allocations, 0u);
  EXPECT_TRUE(WaitUntil([&] { return ran.load() == 1000; }));
  ExitThread(receiver);
}

// A larger closure is boxed; the box is freed once it ran (no leak, also under ASan).
TEST_F(MailboxClosureTest, LargeClosureIsBoxedAndFreed) {
  if (!kCountsAllocations) GTEST_SKIP() << "allocations are not counted in this build";
  Thread* receiver = CreateThread("receiver");
  auto token = std::make_shared<int>(0);
  std::atomic<int> ran{0};
  std::string payload(64, 'p');
  uint64_t before = t_allocations;
  for (int i = 0; i < 1000; ++i) {
    while (!receiver->SendMessage([token, payload, &ran] {
      EXPECT_EQ(payload.size(), 64u);
      EXPECT_EQ(Thread::Current()->name(), "receiver");
      ran.fetch_add(1);
    })) {
      rte_pause();
    }
  }
  EXPECT_GE(t_allocations - before, 1000u) << "large closures are expected to be boxed";
  EXPECT_TRUE(WaitUntil([&] { return ran.load() == 1000; }));
  EXPECT_TRUE(WaitUntil([&] { return token.use_count() == 1; }))
      << "boxed closures were not destroyed: " << token.use_count() - 1 << " left";
  ExitThread(receiver);
}

// A move-only closure (a unique_ptr) works and is destroyed after it ran.
TEST_F(MailboxClosureTest, MoveOnlyClosure) {
  Thread* receiver = CreateThread("receiver");
  std::atomic<int> value{0};
  auto owned = std::make_unique<int>(42);
  ASSERT_TRUE(receiver->SendMessage([owned = std::move(owned), &value] { value = *owned; }));
  EXPECT_TRUE(WaitUntil([&] { return value.load() == 42; }));
  ExitThread(receiver);
}

// Messages from one Thread to another and back: a message may send messages.
TEST_F(MailboxClosureTest, MessagesSendMessages) {
  Thread* a = CreateThread("a", 0);
  Thread* b = CreateThread("b", 1);
  constexpr int kRounds = 10000;
  struct PingPong {
    Thread* a;
    Thread* b;
    int count = 0;  // touched by one side at a time, handed over by the messages
    std::atomic<bool> done{false};
  } pp{a, b};
  struct Hop {
    static void ToB(void* arg) {
      auto* p = static_cast<PingPong*>(arg);
      EXPECT_EQ(Thread::Current(), p->b);
      while (!p->a->SendMessage(&Hop::ToA, p)) rte_pause();
    }
    static void ToA(void* arg) {
      auto* p = static_cast<PingPong*>(arg);
      EXPECT_EQ(Thread::Current(), p->a);
      if (++p->count == kRounds) {
        p->done = true;
        return;
      }
      while (!p->b->SendMessage(&Hop::ToB, p)) rte_pause();
    }
  };
  ASSERT_TRUE(b->SendMessage(&Hop::ToB, &pp));
  EXPECT_TRUE(WaitUntil([&] { return pp.done.load(); }));
  EXPECT_EQ(pp.count, kRounds);
  ExitThread(a);
  ExitThread(b);
}

}  // namespace
}  // namespace pollux::testing
