#import <UIKit/UIKit.h>

NS_ASSUME_NONNULL_BEGIN

/// The application delegate: the window lives in SceneDelegate (Info.plist's scene manifest).
@interface AppDelegate : UIResponder <UIApplicationDelegate>
@end

NS_ASSUME_NONNULL_END
