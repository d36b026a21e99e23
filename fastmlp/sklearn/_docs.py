"""The docstring sections ``MLPClassifier`` and ``MLPRegressor`` share (numpydoc), indented as
the body of a class docstring: each class adds its own summary, attributes and examples."""

PARAMETERS = """
    The parameters have scikit-learn's names and meaning; two defaults differ, because fastmlp is
    about online SGD: ``solver="sgd"`` (scikit-learn: ``"adam"``) and ``batch_size=1``
    (scikit-learn: ``"auto"``). ``solver="lbfgs"`` is refused. As in scikit-learn, the
    parameters are validated by ``fit``/``partial_fit``, not by the constructor.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Widths of the hidden layers, each > 0; ``()`` for no hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        Activation of the hidden layers (``"logistic"`` is fastmlp's ``"sigmoid"``).
    solver : {"sgd", "adam"}, default="sgd"
        SGD (with ``momentum``) or Adam (with ``beta_1``, ``beta_2``, ``epsilon``).
    alpha : float, default=1e-4
        L2 penalty, >= 0 (scikit-learn's: ``alpha * W / batch_size`` is added to each update's
        gradient).
    batch_size : int or "auto", default=1
        Samples per update, >= 1 (clipped, with a warning, to the number of training samples);
        ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule of the SGD learning rate, updated after each epoch (Adam ignores it):
        ``"invscaling"`` is ``learning_rate_init / (t_ + 1) ** power_t``; ``"adaptive"``
        divides the rate by 5 where training would stop (see ``tol``).
    learning_rate_init : float, default=0.001
        Initial learning rate, > 0.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``, >= 0.
    max_iter : int, default=200
        Maximum number of epochs, >= 1.
    shuffle : bool, default=True
        Visit the samples in a new random order each epoch.
    random_state : int, RandomState instance or None, default=None
        An int is the seed of ``net_`` (initial weights, shuffling) as it is, so
        ``MLP(..., seed=random_state)`` builds the same net, and also seeds the
        ``early_stopping`` split; otherwise a seed is drawn from it.
    tol : float, default=1e-4
        Least improvement, >= 0, of the training loss (with ``early_stopping``: of the
        validation score) that counts as progress. After more than ``n_iter_no_change`` epochs
        without progress training stops; with ``learning_rate="adaptive"`` the learning rate is
        divided by 5 instead, and training stops once it is 1e-6 or less.
    verbose : bool, default=False
        Print the loss (and the validation score) of each epoch.
    warm_start : bool, default=False
        ``fit`` continues from the current ``net_`` rather than building a new one.
    momentum : float, default=0.9
        SGD momentum, in [0, 1], in scikit-learn's form ``v = momentum * v - lr * g``.
    nesterovs_momentum : bool, default=True
        Use Nesterov's variant of the momentum.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for classes) and
        stop on its score (accuracy or R^2); the best epoch's parameters are restored at the
        end of ``fit``. ``partial_fit`` refuses it.
    validation_fraction : float, default=0.1
        Fraction of the training data held out by ``early_stopping``: in (0, 1) with it, in
        [0, 1] without.
    beta_1 : float, default=0.9
        Adam's decay rate of the first moment, in [0, 1].
    beta_2 : float, default=0.999
        Adam's decay rate of the second moment, in [0, 1].
    epsilon : float, default=1e-8
        Adam's term added to the denominator, > 0.
    n_iter_no_change : int, default=10
        Epochs without progress (see ``tol``) tolerated, >= 1.
    dtype : {np.float64, np.float32}, default=np.float64
        Dtype of the parameters and of all arithmetic; ``X`` is converted to it.
"""

ATTRIBUTES = """
    Attributes
    ----------
    net_ : fastmlp.MLP
        The underlying network, of layer sizes
        ``(n_features_in_, *hidden_layer_sizes, n_outputs_)``.
    coefs_ : list of ndarray, each of shape (n_in, n_out)
        Weights of each layer (``n_in``, ``n_out``: its input and output widths) in
        scikit-learn's layout: new transposed copies of ``net_.weights[l]``, of shape
        ``(n_out, n_in)``, on each access; writing to them does not change the model. (The
        regressor's last layer includes its target scaling: see ``normalize_y``.)
    intercepts_ : list of ndarray, each of shape (n_out,)
        New copies of ``net_.biases`` (the regressor's last including its target scaling).
    n_iter_ : int
        Epochs run by the last ``fit`` (1 after ``partial_fit``).
    t_ : int
        Training samples seen so far (``n_iter_ * n_samples`` summed over calls).
    loss_curve_ : list of float
        Training loss of each epoch: the mean per-sample loss (each sample's taken before its
        update) plus the L2 term.
    best_loss_ : float or None
        Lowest entry of ``loss_curve_``; None with ``early_stopping``.
    validation_scores_ : list of float or None
        Validation score of each epoch with ``early_stopping``; None without.
    best_validation_score_ : float or None
        Highest entry of ``validation_scores_``; None without ``early_stopping``.
    n_features_in_ : int
        Number of features of the ``X`` seen by ``fit``.
    feature_names_in_ : ndarray of str of shape (n_features_in_,)
        Column names of ``X``; defined only when ``X`` had string column names.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        Output activation, in scikit-learn's names: "softmax", "logistic" or "identity".
"""

NOTES = """
    Notes
    -----
    Training runs scikit-learn's epoch loop, one ``net_.fit(..., epochs=1)`` per iteration,
    with its stopping rule (see ``tol``) and its ``ConvergenceWarning`` when ``max_iter`` is
    reached. Differences from scikit-learn: weights are Glorot-initialised and biases start
    at 0; the momentum/Adam state lives in ``net_`` and is kept across ``warm_start`` fits
    (scikit-learn restarts it); ``sample_weight`` multiplies each sample's gradient, and a
    batch's gradient is divided by its number of rows, as in ``MLP.fit`` (scikit-learn
    divides by the batch's weight sum, which with ``batch_size=1`` cancels the weight); the L2
    term of ``loss_curve_`` uses the weights at the end of each epoch.
"""

REGRESSOR_PARAMETERS = """    normalize_y : bool, default=True
        Train on standardised targets, ``(y - mean) / std`` (scikit-learn's
        ``GaussianProcessRegressor`` has the same option), and predict on ``y``'s own scale.
        Per-sample SGD on raw targets in the hundreds diverges; standardised, the defaults
        work whatever the targets' unit. With ``partial_fit`` the mean and std are running
        statistics: when they drift (the std by a factor 2, the mean by half a std) the
        scaling is renewed and the output layer rescaled so that predictions do not change.
        ``loss_curve_`` is then in standardised units; ``coefs_``/``intercepts_`` include the
        scaling (they predict ``y`` itself). ``False``: scikit-learn's behaviour, raw targets.
"""
