// The sample app's entry point: UIKit with one scene (SceneDelegate).
#import <UIKit/UIKit.h>

#import "AppDelegate.h"

int main(int argc, char *argv[]) {
  NSString *delegateClassName;
  @autoreleasepool {
    delegateClassName = NSStringFromClass([AppDelegate class]);
  }
  return UIApplicationMain(argc, argv, nil, delegateClassName);
}
