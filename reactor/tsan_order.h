// What DPDK orders that ThreadSanitizer cannot see. Private to the reactor component.
#pragma once

namespace pollux {

// ThreadSanitizer does not see the order DPDK gives (its ring orders with volatile accesses and
// compiler barriers on x86; its lcore wait is not instrumented): pollux states it where it relies
// on it (a message's contents, a loop's end before its teardown). Nothing in other builds.
#if defined(POLLUX_TSAN_BUILD)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
inline void TsanPublish(void* object) { __tsan_release(object); }
inline void TsanReceive(void* object) { __tsan_acquire(object); }
#else
inline void TsanPublish(void*) {}
inline void TsanReceive(void*) {}
#endif

}  // namespace pollux
