#import <UIKit/UIKit.h>

NS_ASSUME_NONNULL_BEGIN

/// Creates the window with the classifier screen (ViewController) in a navigation controller.
@interface SceneDelegate : UIResponder <UIWindowSceneDelegate>
@property (nonatomic, strong, nullable) UIWindow *window;
@end

NS_ASSUME_NONNULL_END
