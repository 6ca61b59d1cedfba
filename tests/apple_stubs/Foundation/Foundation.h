// Stub for syntax checks on Linux (tests/objc.py): GNUstep's Foundation, then what Apple's
// Foundation declares and GNUstep lacks or defines differently. Not Apple's header: declarations
// only, just enough for the generated sources to be checked.
// GNUstep declares -[NSItemProvider loadObjectOfClass:completionHandler:] with a block type of
// its own; it is renamed here and declared below as Apple's SDK does.
#define loadObjectOfClass MGStubGNUstepLoadObjectOfClass
#include_next <Foundation/Foundation.h>
#undef loadObjectOfClass

#ifndef MG_STUB_FOUNDATION_ADDITIONS
#define MG_STUB_FOUNDATION_ADDITIONS

// GNUstep defines NS_UNAVAILABLE as nothing: make misuse an error, as on Apple platforms.
#undef NS_UNAVAILABLE
#define NS_UNAVAILABLE __attribute__((unavailable))

#ifndef NS_SWIFT_NAME
#define NS_SWIFT_NAME(name) __attribute__((swift_name(#name)))
#endif
#ifndef NS_SWIFT_UNAVAILABLE
#define NS_SWIFT_UNAVAILABLE(msg) __attribute__((availability(swift, unavailable, message = msg)))
#endif
#ifndef NS_REFINED_FOR_SWIFT
#define NS_REFINED_FOR_SWIFT __attribute__((swift_private))
#endif
#ifndef NS_SWIFT_NOTHROW
#define NS_SWIFT_NOTHROW __attribute__((swift_error(none)))
#endif
#ifndef NS_NOESCAPE
#define NS_NOESCAPE __attribute__((noescape))
#endif
#ifndef NS_SWIFT_SENDABLE
#define NS_SWIFT_SENDABLE __attribute__((swift_attr("@Sendable")))
#endif
#ifndef NS_REQUIRES_SUPER
#define NS_REQUIRES_SUPER __attribute__((objc_requires_super))
#endif
#ifndef NS_CLOSED_ENUM
#define NS_CLOSED_ENUM(type, name) NS_ENUM(type, name)
#endif
#ifndef NS_TYPED_ENUM
#define NS_TYPED_ENUM __attribute__((swift_wrapper(enum)))
#endif
#ifndef NS_TYPED_EXTENSIBLE_ENUM
#define NS_TYPED_EXTENSIBLE_ENUM __attribute__((swift_wrapper(struct)))
#endif
#ifndef NS_EXTENSIBLE_STRING_ENUM
#define NS_EXTENSIBLE_STRING_ENUM __attribute__((swift_wrapper(struct)))
#endif
// Apple's NS_ERROR_ENUM: an NS_ENUM whose type Swift imports as an Error bound to `domain`.
#ifndef NS_ERROR_ENUM
#define NS_ERROR_ENUM(domain, name)                                             \
  enum name : NSInteger name;                                                   \
  enum __attribute__((ns_error_domain(domain))) name : NSInteger
#endif
#ifndef API_AVAILABLE
#define API_AVAILABLE(...)
#endif
#ifndef API_UNAVAILABLE
#define API_UNAVAILABLE(...)
#endif
#ifndef NS_HEADER_AUDIT_BEGIN
#define NS_HEADER_AUDIT_BEGIN(...) NS_ASSUME_NONNULL_BEGIN
#define NS_HEADER_AUDIT_END(...) NS_ASSUME_NONNULL_END
#endif

// Apple's FOUNDATION_EXTERN, and FOUNDATION_EXPORT with C linkage in C++ as on Apple platforms
// (GNUstep's is a plain `extern`).
#ifndef FOUNDATION_EXTERN
#ifdef __cplusplus
#define FOUNDATION_EXTERN extern "C"
#else
#define FOUNDATION_EXTERN extern
#endif
#endif
#undef FOUNDATION_EXPORT
#define FOUNDATION_EXPORT FOUNDATION_EXTERN

NS_ASSUME_NONNULL_BEGIN

// Reading files into NSData with options and errors (GNUstep has only the plain readers).
typedef NS_OPTIONS(NSUInteger, NSDataReadingOptions) {
  NSDataReadingMappedIfSafe = 1UL << 0,
  NSDataReadingUncached = 1UL << 1,
  NSDataReadingMappedAlways = 1UL << 3,
};

@interface NSData (MGStubReading)
+ (nullable instancetype)dataWithContentsOfURL:(NSURL *)url
                                       options:(NSDataReadingOptions)readOptionsMask
                                         error:(NSError **)errorPtr;
+ (nullable instancetype)dataWithContentsOfFile:(NSString *)path
                                        options:(NSDataReadingOptions)readOptionsMask
                                          error:(NSError **)errorPtr;
- (nullable instancetype)initWithContentsOfURL:(NSURL *)url
                                       options:(NSDataReadingOptions)readOptionsMask
                                         error:(NSError **)errorPtr;
@end

@interface NSItemProvider (MGStubLoading)
- (NSProgress *)loadObjectOfClass:(Class<NSItemProviderReading>)aClass
                completionHandler:(void (^)(__kindof id<NSItemProviderReading> _Nullable object,
                                            NSError *_Nullable error))completionHandler;
@end

NS_ASSUME_NONNULL_END

// Apple's Foundation reexports these.
#import <CoreFoundation/CoreFoundation.h>
#import <dispatch/dispatch.h>

#endif  // MG_STUB_FOUNDATION_ADDITIONS
