#import <UIKit/UIKit.h>

NS_ASSUME_NONNULL_BEGIN

/// The classifier screen: the bundled sample picture is classified at launch; "Choose Photo"
/// opens the system photo picker; the GPU/CPU switch recreates the classifier on that backend.
/// Shows the top-5 labels and scores, the inference time, the backend in use and any error.
/// With "Dump tensors" on, each classification also writes every tensor (the input included) in
/// mobilegen's dump format to Documents/mobilegen-dumps/<yyyyMMdd-HHmmss>/, and says where.
@interface ViewController : UIViewController
@end

NS_ASSUME_NONNULL_END
