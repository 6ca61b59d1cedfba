// Stub for syntax checks on Linux (tests/objc.py): the photo picker (PHPickerViewController,
// iOS 14+) as the sample app uses it. Declarations only; NSItemProvider comes from GNUstep.
#pragma once

#import <Foundation/Foundation.h>
#import <UIKit/UIKit.h>

NS_ASSUME_NONNULL_BEGIN

@interface PHPickerFilter : NSObject <NSCopying>
@property (class, nonatomic, readonly) PHPickerFilter *imagesFilter;
@property (class, nonatomic, readonly) PHPickerFilter *livePhotosFilter;
@property (class, nonatomic, readonly) PHPickerFilter *videosFilter;
+ (PHPickerFilter *)anyFilterMatchingSubfilters:(NSArray<PHPickerFilter *> *)subfilters;
- (instancetype)init NS_UNAVAILABLE;
+ (instancetype)new NS_UNAVAILABLE;
@end

typedef NS_ENUM(NSInteger, PHPickerConfigurationAssetRepresentationMode) {
  PHPickerConfigurationAssetRepresentationModeAutomatic = 0,
  PHPickerConfigurationAssetRepresentationModeCurrent = 1,
  PHPickerConfigurationAssetRepresentationModeCompatible = 2,
};

@interface PHPickerConfiguration : NSObject <NSCopying>
- (instancetype)init;
@property (nonatomic, copy, nullable) PHPickerFilter *filter;
@property (nonatomic) NSInteger selectionLimit;
@property (nonatomic) PHPickerConfigurationAssetRepresentationMode preferredAssetRepresentationMode;
@end

@interface PHPickerResult : NSObject
@property (nonatomic, readonly) NSItemProvider *itemProvider;
@property (nonatomic, readonly, nullable) NSString *assetIdentifier;
- (instancetype)init NS_UNAVAILABLE;
+ (instancetype)new NS_UNAVAILABLE;
@end

@class PHPickerViewController;

@protocol PHPickerViewControllerDelegate <NSObject>
- (void)picker:(PHPickerViewController *)picker didFinishPicking:(NSArray<PHPickerResult *> *)results;
@end

@interface PHPickerViewController : UIViewController
- (instancetype)initWithConfiguration:(PHPickerConfiguration *)configuration NS_DESIGNATED_INITIALIZER;
@property (nonatomic, weak, nullable) id<PHPickerViewControllerDelegate> delegate;
@property (nonatomic, readonly, copy) PHPickerConfiguration *configuration;
- (instancetype)initWithNibName:(nullable NSString *)nibNameOrNil bundle:(nullable NSBundle *)nibBundleOrNil NS_UNAVAILABLE;
- (nullable instancetype)initWithCoder:(NSCoder *)coder NS_UNAVAILABLE;
- (instancetype)init NS_UNAVAILABLE;
+ (instancetype)new NS_UNAVAILABLE;
@end

// UIKit makes UIImage loadable from an item provider.
@interface UIImage (MGStubItemProvider) <NSItemProviderReading>
@end

NS_ASSUME_NONNULL_END
