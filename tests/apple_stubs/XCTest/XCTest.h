// Stub for syntax checks on Linux (tests/objc.py): XCTestCase, expectations and the XCTAssert
// macros. Declarations only; each macro evaluates its arguments as Apple's do (so type errors in
// a test show up here) and reports through _XCTStubFailure, which nothing defines.
#pragma once

#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

@interface XCTestExpectation : NSObject
- (instancetype)initWithDescription:(NSString *)expectationDescription;
- (void)fulfill;
@property (copy) NSString *expectationDescription;
@property NSUInteger expectedFulfillmentCount;
@end

@interface XCTestCase : NSObject
+ (void)setUp;
+ (void)tearDown;
- (void)setUp;
- (void)tearDown;
- (BOOL)setUpWithError:(NSError *_Nullable *_Nullable)error;
- (BOOL)tearDownWithError:(NSError *_Nullable *_Nullable)error;
- (XCTestExpectation *)expectationWithDescription:(NSString *)description;
- (void)waitForExpectations:(NSArray<XCTestExpectation *> *)expectations timeout:(NSTimeInterval)seconds;
- (void)waitForExpectationsWithTimeout:(NSTimeInterval)timeout handler:(void (^_Nullable)(NSError *_Nullable error))handler;
- (void)measureBlock:(void (^)(void))block;
- (void)addTeardownBlock:(void (^)(void))block;
@property BOOL continueAfterFailure;
@end

NS_ASSUME_NONNULL_END

#ifdef __cplusplus
extern "C"
#endif
void _XCTStubFailure(const char *_Nonnull file, int line, NSString *_Nullable format, ...);

#define _XCT_FAIL(...) _XCTStubFailure(__FILE__, __LINE__, @"" __VA_ARGS__)
#define XCTFail(...) _XCT_FAIL(__VA_ARGS__)
#define XCTAssert(expression, ...) do { if (!(expression)) _XCT_FAIL(__VA_ARGS__); } while (0)
#define XCTAssertTrue(expression, ...) XCTAssert(expression, __VA_ARGS__)
#define XCTAssertFalse(expression, ...) XCTAssert(!(expression), __VA_ARGS__)
#define XCTAssertNil(expression, ...) XCTAssert((expression) == nil, __VA_ARGS__)
#define XCTAssertNotNil(expression, ...) XCTAssert((expression) != nil, __VA_ARGS__)
#define XCTAssertEqual(a, b, ...) XCTAssert((a) == (b), __VA_ARGS__)
#define XCTAssertNotEqual(a, b, ...) XCTAssert((a) != (b), __VA_ARGS__)
#define XCTAssertEqualObjects(a, b, ...) XCTAssert([(id)(a) isEqual:(id)(b)], __VA_ARGS__)
#define XCTAssertNotEqualObjects(a, b, ...) XCTAssert(![(id)(a) isEqual:(id)(b)], __VA_ARGS__)
#define XCTAssertEqualWithAccuracy(a, b, accuracy, ...) \
  XCTAssert(((a) > (b) ? (a) - (b) : (b) - (a)) <= (accuracy), __VA_ARGS__)
#define XCTAssertGreaterThan(a, b, ...) XCTAssert((a) > (b), __VA_ARGS__)
#define XCTAssertGreaterThanOrEqual(a, b, ...) XCTAssert((a) >= (b), __VA_ARGS__)
#define XCTAssertLessThan(a, b, ...) XCTAssert((a) < (b), __VA_ARGS__)
#define XCTAssertLessThanOrEqual(a, b, ...) XCTAssert((a) <= (b), __VA_ARGS__)
#define XCTAssertNoThrow(expression, ...) do { (void)(expression); } while (0)
#define XCTAssertThrows(expression, ...) do { (void)(expression); } while (0)
#define XCTSkip(...) _XCT_FAIL(__VA_ARGS__)
