// Stub for syntax checks on Linux (tests/objc.py): the CoreFoundation that GNUstep lacks, only
// what the generated sources use. Declarations only.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef CF_ENUM
#define CF_ENUM(type, name) enum name : type name; enum name : type
#define CF_OPTIONS(type, name) CF_ENUM(type, name)
#define CF_RETURNS_RETAINED __attribute__((cf_returns_retained))
#define CF_RETURNS_NOT_RETAINED __attribute__((cf_returns_not_retained))
#define CF_IMPLICIT_BRIDGING_ENABLED _Pragma("clang arc_cf_code_audited begin")
#define CF_IMPLICIT_BRIDGING_DISABLED _Pragma("clang arc_cf_code_audited end")
#define CF_ASSUME_NONNULL_BEGIN _Pragma("clang assume_nonnull begin")
#define CF_ASSUME_NONNULL_END _Pragma("clang assume_nonnull end")
#define CF_SWIFT_NAME(name) __attribute__((swift_name(#name)))
#define CF_CLOSED_ENUM(type, name) CF_ENUM(type, name)
#define CF_BRIDGED_TYPE(T) __attribute__((objc_bridge(T)))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef const void *CFTypeRef;
typedef signed long CFIndex;
typedef unsigned long CFTypeID;
typedef const struct __attribute__((objc_bridge(NSString))) __CFString *CFStringRef;
typedef const struct __attribute__((objc_bridge(NSDictionary))) __CFDictionary *CFDictionaryRef;
typedef const struct __attribute__((objc_bridge(NSData))) __CFData *CFDataRef;
typedef const struct __attribute__((objc_bridge(NSURL))) __CFURL *CFURLRef;
typedef int32_t OSStatus;
typedef uint32_t OSType;

CFTypeRef _Nonnull CFRetain(CFTypeRef _Nonnull cf);
void CFRelease(CFTypeRef _Nonnull cf);

#ifdef __cplusplus
}
#endif
